//! Owns value maps: a file's own spelling of a choice ("K", "Gold member", "ja") read as a
//! value its enum or boolean attribute allows, chosen by the user before the import.
//!
//! The map is resolved once into the [`MappingPlan`] (so every chunk carries it and every
//! mapper replica applies the same), checked against the catalog like the column mapping, and
//! applied by [`crate::validate::validate_record`] before a cell is normalized: a mapped value
//! is the user's word on what the cell means, even where the attribute would read it alone.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::mapping::{
    find_attribute, fold_value, resolve_mapping, AttributeDef, AttributeType, ColumnMapping,
    MappingErrors, MappingPlan, MappingProblem, ValueMaps,
};
use crate::template::strip_formula_guard;
use crate::validate::{normalize_value, unreadable_cell, PhoneRegion};

/// One `--map-value ATTRIBUTE:VALUE=ALLOWED` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueMapping {
    pub attribute: String,
    /// As the file writes it; compared trimmed and ignoring case.
    pub value: String,
    /// A value the attribute allows.
    pub allowed: String,
}

/// The cells of one enum or boolean column that its attribute does not read alone, as a
/// sample of the file holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfitColumn {
    pub column: String,
    pub attribute: String,
    /// What the attribute allows ("true" and "false" for a boolean).
    pub allowed: Vec<String>,
    /// Distinct by [`fold_value`], in the order the sample first holds them.
    pub values: Vec<UnfitValue>,
}

/// One distinct value a choice column holds that its attribute does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfitValue {
    /// Trimmed, as first written in the sample.
    pub value: String,
    /// Sampled cells holding it.
    pub cells: usize,
    /// The allowed value the chosen value map reads it as.
    pub mapped_to: Option<String>,
    /// An allowed value it obviously stands for, when there is one.
    pub suggestion: Option<String>,
}

/// The longest value a value map holds, either side: as long as an enum's allowed value.
pub const MAX_VALUE_CHARS: usize = 200;

/// At most this many distinct values are listed per column: a column with more is not a
/// choice written another way but the wrong column.
pub const MAX_UNFIT_VALUES: usize = 50;

/// [`resolve_mapping`], then the value maps checked against the plan: every problem of both
/// is reported at once.
pub fn resolve_plan(
    header: &[String],
    catalog: &[AttributeDef],
    explicit: &[ColumnMapping],
    value_mappings: &[ValueMapping],
    match_on: &[String],
) -> Result<MappingPlan, MappingErrors> {
    let (mut plan, mut problems) = match resolve_mapping(header, catalog, explicit, match_on) {
        Ok(plan) => (Some(plan), Vec::new()),
        Err(errors) => (None, errors.problems),
    };
    let is_mapped = |key: &str| match &plan {
        Some(plan) => plan
            .columns
            .iter()
            .flatten()
            .any(|filled| filled.key == key),
        // The columns could not be resolved; only the map's own problems are told.
        None => true,
    };
    let value_maps = resolve_value_maps(catalog, value_mappings, is_mapped, &mut problems);
    match plan.as_mut() {
        Some(plan) if problems.is_empty() => {
            plan.value_maps = value_maps;
            Ok(plan.clone())
        }
        _ => Err(MappingErrors { problems }),
    }
}

/// The value maps a preview reads its sample with: those of `value_mappings` that can be
/// resolved (what cannot is for the start of the import, or [`resolve_plan`], to tell).
pub(crate) fn preview_value_maps(
    catalog: &[AttributeDef],
    value_mappings: &[ValueMapping],
) -> ValueMaps {
    resolve_value_maps(catalog, value_mappings, |_| true, &mut Vec::new())
}

pub(crate) fn resolve_value_maps(
    catalog: &[AttributeDef],
    value_mappings: &[ValueMapping],
    is_mapped: impl Fn(&str) -> bool,
    problems: &mut Vec<MappingProblem>,
) -> ValueMaps {
    let mut value_maps = ValueMaps::new();
    // Per attribute and folded value: every target named for it, for the "twice" problem.
    let mut targets: BTreeMap<(String, String), (String, Vec<String>)> = BTreeMap::new();
    for mapping in value_mappings {
        let Some(catalog_index) = find_attribute(catalog, mapping.attribute.trim()) else {
            push_once(
                problems,
                MappingProblem::ValueMapUnknownAttribute {
                    attribute: mapping.attribute.trim().to_owned(),
                },
            );
            continue;
        };
        let attribute = &catalog[catalog_index];
        if !is_choice(&attribute.attribute_type) {
            push_once(
                problems,
                MappingProblem::ValueMapNotChoice {
                    attribute: attribute.key.clone(),
                    attribute_type: attribute.attribute_type.to_string(),
                },
            );
            continue;
        }
        if !is_mapped(&attribute.key) {
            push_once(
                problems,
                MappingProblem::ValueMapUnmapped {
                    attribute: attribute.key.clone(),
                },
            );
            continue;
        }
        // A value copied from an error file keeps the guard the cell has lost.
        let folded = fold_value(strip_formula_guard(&mapping.value));
        if folded.is_empty() {
            push_once(
                problems,
                MappingProblem::ValueMapEmptyValue {
                    attribute: attribute.key.clone(),
                },
            );
            continue;
        }
        // The region only matters for phones, which are not choices.
        let target = match normalize_value(
            &attribute.attribute_type,
            &mapping.allowed,
            PhoneRegion::default(),
        ) {
            Ok(Some(target)) => target,
            Ok(None) => {
                problems.push(MappingProblem::ValueMapTargetNotAllowed {
                    attribute: attribute.key.clone(),
                    value: mapping.value.trim().to_owned(),
                    target: mapping.allowed.trim().to_owned(),
                    reason: "it is empty".to_owned(),
                });
                continue;
            }
            Err(reason) => {
                problems.push(MappingProblem::ValueMapTargetNotAllowed {
                    attribute: attribute.key.clone(),
                    value: mapping.value.trim().to_owned(),
                    target: mapping.allowed.trim().to_owned(),
                    reason,
                });
                continue;
            }
        };
        // Mapping a value the attribute reads alone would quietly turn one allowed value
        // into another ("M" into "F"): a slip, not a spelling.
        if let Ok(Some(own)) = normalize_value(
            &attribute.attribute_type,
            &mapping.value,
            PhoneRegion::default(),
        ) {
            if own != target {
                problems.push(MappingProblem::ValueMapOfAllowedValue {
                    attribute: attribute.key.clone(),
                    value: mapping.value.trim().to_owned(),
                });
                continue;
            }
        }
        let (_, named) = targets
            .entry((attribute.key.clone(), folded.clone()))
            .or_insert_with(|| (mapping.value.trim().to_owned(), Vec::new()));
        if !named.contains(&target) {
            named.push(target.clone());
        }
        value_maps
            .entry(attribute.key.clone())
            .or_default()
            .insert(folded, target);
    }
    for ((attribute, _), (value, named)) in targets {
        if named.len() > 1 {
            problems.push(MappingProblem::ValueMappedTwice {
                attribute,
                value,
                targets: named,
            });
        }
    }
    value_maps
}

fn push_once(problems: &mut Vec<MappingProblem>, problem: MappingProblem) {
    if !problems.contains(&problem) {
        problems.push(problem);
    }
}

fn is_choice(attribute_type: &AttributeType) -> bool {
    matches!(
        attribute_type,
        AttributeType::Boolean | AttributeType::Enum { .. }
    )
}

/// The values of a choice attribute, as a value map may target them.
pub fn allowed_values(attribute_type: &AttributeType) -> Vec<String> {
    match attribute_type {
        AttributeType::Boolean => vec!["true".to_owned(), "false".to_owned()],
        AttributeType::Enum { values } => {
            values.iter().map(|value| value.trim().to_owned()).collect()
        }
        _ => Vec::new(),
    }
}

/// The distinct cells of a choice column's sample that its attribute does not read alone,
/// with the map's reading of each and a suggestion; `None` when every cell fits or the
/// attribute is not a choice.
pub fn unfit_column<'a>(
    column: &str,
    attribute: &AttributeDef,
    cells: impl IntoIterator<Item = &'a str>,
    value_maps: &ValueMaps,
) -> Option<UnfitColumn> {
    if !is_choice(&attribute.attribute_type) {
        return None;
    }
    let allowed = allowed_values(&attribute.attribute_type);
    let map = value_maps.get(&attribute.key);
    let mut values: Vec<UnfitValue> = Vec::new();
    let mut position: BTreeMap<String, usize> = BTreeMap::new();
    for cell in cells {
        let cell = strip_formula_guard(cell).trim();
        // An unreadable cell fails whatever it is mapped to; a long one is not a choice
        // written another way. Both are left to the invalid columns and the row errors.
        if cell.is_empty()
            || cell.chars().count() > MAX_VALUE_CHARS
            || unreadable_cell(cell).is_some()
            || normalize_value(&attribute.attribute_type, cell, PhoneRegion::default()).is_ok()
        {
            continue;
        }
        let folded = fold_value(cell);
        if let Some(&index) = position.get(&folded) {
            values[index].cells += 1;
            continue;
        }
        if values.len() == MAX_UNFIT_VALUES {
            continue;
        }
        position.insert(folded.clone(), values.len());
        values.push(UnfitValue {
            value: cell.to_owned(),
            cells: 1,
            mapped_to: map.and_then(|map| map.get(&folded)).cloned(),
            suggestion: suggest_allowed(&attribute.attribute_type, &folded, &allowed),
        });
    }
    (!values.is_empty()).then(|| UnfitColumn {
        column: column.to_owned(),
        attribute: attribute.key.clone(),
        allowed,
        values,
    })
}

/// Yes and no in the languages the service's users write in, beyond those a boolean reads
/// alone (see `normalize_boolean`), and the check marks. Marks that mean yes in one export
/// and nothing in another ("x", "+", "-", "ok") are not suggested: the page presets a
/// suggestion, and a wrong preset is a wrong import.
const YES_WORDS: &[&str] = &[
    "ja", "si", "sí", "oui", "da", "igen", "ano", "áno", "✓", "✔",
];
const NO_WORDS: &[&str] = &["nein", "non", "ne", "nem", "brak", "✗", "✘"];

/// The allowed value `folded` obviously stands for: for a boolean, a yes or no word; for an
/// enum, the one allowed value it begins or ends like (`"prem"` → `"premium"`, `"gold member"`
/// → `"gold"`) when no other does. One letter says too little: "maybe" is not "M".
fn suggest_allowed(
    attribute_type: &AttributeType,
    folded: &str,
    allowed: &[String],
) -> Option<String> {
    match attribute_type {
        AttributeType::Boolean if YES_WORDS.contains(&folded) => Some("true".to_owned()),
        AttributeType::Boolean if NO_WORDS.contains(&folded) => Some("false".to_owned()),
        AttributeType::Enum { .. } => {
            let mut candidates = allowed.iter().filter(|value| {
                let value = value.to_lowercase();
                let long = |text: &str| text.chars().count() >= 2;
                (long(&value) && (folded.starts_with(&value) || folded.ends_with(&value)))
                    || (long(folded) && value.starts_with(folded))
            });
            match (candidates.next(), candidates.next()) {
                (Some(only), None) => Some(only.clone()),
                _ => None,
            }
        }
        _ => None,
    }
}

impl FromStr for ValueMapping {
    type Err = String;

    /// Parses "ATTRIBUTE:VALUE=ALLOWED": the attribute ends at the first ':' (keys have none),
    /// the value at the last '=' (allowed values seldom hold one).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected = "expected ATTRIBUTE:VALUE=ALLOWED";
        let Some((attribute, rest)) = text.split_once(':') else {
            return Err(format!("{expected}, got \"{text}\" (no ':')"));
        };
        let Some((value, allowed)) = rest.rsplit_once('=') else {
            return Err(format!("{expected}, got \"{text}\" (no '=')"));
        };
        let (attribute, value, allowed) = (attribute.trim(), value.trim(), allowed.trim());
        for (part, name) in [
            (attribute, "attribute"),
            (value, "value"),
            (allowed, "allowed value"),
        ] {
            if part.is_empty() {
                return Err(format!("{expected}, got \"{text}\" (the {name} is empty)"));
            }
        }
        Ok(Self {
            attribute: attribute.to_owned(),
            value: value.to_owned(),
            allowed: allowed.to_owned(),
        })
    }
}

impl fmt::Display for ValueMapping {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}:{}={}",
            self.attribute, self.value, self.allowed
        )
    }
}

/// An optional enum attribute, for tests here and in the preview's.
#[cfg(test)]
pub(crate) fn enum_attribute(key: &str, values: &[&str]) -> AttributeDef {
    AttributeDef {
        key: key.to_owned(),
        label: key.to_owned(),
        attribute_type: AttributeType::Enum {
            values: values.iter().map(|value| (*value).to_owned()).collect(),
        },
        required: false,
        identifier: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_parser::RawRecord;
    use crate::mapping::standard_attributes;
    use crate::validate::validate_record;

    fn catalog() -> Vec<AttributeDef> {
        let mut catalog = standard_attributes();
        catalog.push(enum_attribute("segment", &["premium", "standard", "gold"]));
        catalog.push(AttributeDef {
            key: "newsletter".into(),
            label: "Newsletter".into(),
            attribute_type: AttributeType::Boolean,
            required: false,
            identifier: false,
        });
        catalog
    }

    fn header() -> Vec<String> {
        ["email", "segment", "newsletter", "city"]
            .map(String::from)
            .to_vec()
    }

    fn value_mappings(texts: &[&str]) -> Vec<ValueMapping> {
        texts
            .iter()
            .map(|text| text.parse().expect("well formed"))
            .collect()
    }

    fn record(fields: &[&str]) -> RawRecord {
        RawRecord {
            line: 2,
            fields: fields.iter().map(|field| (*field).to_owned()).collect(),
            end_offset: 0,
        }
    }

    #[test]
    fn mapped_values_are_read_as_chosen_whatever_their_case_and_the_rest_still_fail() {
        let plan = resolve_plan(
            &header(),
            &catalog(),
            &[],
            &value_mappings(&[
                "segment:VIP=Premium",
                "newsletter:ja=yes",
                "Segment:'-basic=standard",
            ]),
            &[],
        )
        .expect("valid");
        let valid = validate_record(
            &plan,
            &record(&["a@x.pl", " vip ", "JA", ""]),
            PhoneRegion::default(),
        )
        .expect("mapped values fit");
        assert_eq!(
            valid.values.get("segment").map(String::as_str),
            Some("premium")
        );
        assert_eq!(
            valid.values.get("newsletter").map(String::as_str),
            Some("true")
        );
        let valid = validate_record(
            &plan,
            &record(&["b@x.pl", "gold", "nie", ""]),
            PhoneRegion::default(),
        )
        .expect("allowed values still fit");
        assert_eq!(
            valid.values.get("segment").map(String::as_str),
            Some("gold")
        );
        assert_eq!(
            valid.values.get("newsletter").map(String::as_str),
            Some("false")
        );
        // The attribute named in another case, the value copied with an error file's guard.
        let valid = validate_record(
            &plan,
            &record(&["d@x.pl", "'-Basic", "", ""]),
            PhoneRegion::default(),
        )
        .expect("a guarded mapped value fits");
        assert_eq!(
            valid.values.get("segment").map(String::as_str),
            Some("standard")
        );
        let errors = validate_record(
            &plan,
            &record(&["e@x.pl", "vip\u{1}", "", ""]),
            PhoneRegion::default(),
        )
        .expect_err("a control character fails before the map is read");
        assert!(errors[0].reason.contains("control character"), "{errors:?}");
        let errors = validate_record(
            &plan,
            &record(&["c@x.pl", "platinum", "", ""]),
            PhoneRegion::default(),
        )
        .expect_err("an unmapped value fails");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].value.as_deref(), Some("platinum"));
        assert_eq!(errors[0].reason, "not one of: premium, standard, gold");
    }

    #[test]
    fn every_problem_of_a_value_map_is_named_with_the_column_problems() {
        let problems = resolve_plan(
            &header(),
            &catalog(),
            &[ColumnMapping {
                column: "nowhere".into(),
                attribute: "city".into(),
            }],
            &[
                ValueMapping {
                    attribute: "tier".into(),
                    value: "a".into(),
                    allowed: "b".into(),
                },
                ValueMapping {
                    attribute: "city".into(),
                    value: "Lodz".into(),
                    allowed: "Łódź".into(),
                },
                ValueMapping {
                    attribute: "segment".into(),
                    value: "VIP".into(),
                    allowed: "diamond".into(),
                },
                ValueMapping {
                    attribute: "segment".into(),
                    value: " ".into(),
                    allowed: "gold".into(),
                },
                ValueMapping {
                    attribute: "segment".into(),
                    value: "top".into(),
                    allowed: "gold".into(),
                },
                ValueMapping {
                    attribute: "segment".into(),
                    value: "TOP".into(),
                    allowed: "premium".into(),
                },
                ValueMapping {
                    attribute: "segment".into(),
                    value: "Gold".into(),
                    allowed: "premium".into(),
                },
                ValueMapping {
                    attribute: "segment".into(),
                    value: "GOLD".into(),
                    allowed: "gold".into(),
                },
            ],
            &[],
        )
        .expect_err("refused")
        .problems;
        assert_eq!(
            problems,
            vec![
                MappingProblem::ColumnNotInHeader {
                    column: "nowhere".into()
                },
                MappingProblem::ValueMapUnknownAttribute {
                    attribute: "tier".into()
                },
                MappingProblem::ValueMapNotChoice {
                    attribute: "city".into(),
                    attribute_type: "text".into()
                },
                MappingProblem::ValueMapTargetNotAllowed {
                    attribute: "segment".into(),
                    value: "VIP".into(),
                    target: "diamond".into(),
                    reason: "not one of: premium, standard, gold".into()
                },
                MappingProblem::ValueMapEmptyValue {
                    attribute: "segment".into()
                },
                MappingProblem::ValueMapOfAllowedValue {
                    attribute: "segment".into(),
                    value: "Gold".into()
                },
                MappingProblem::ValueMappedTwice {
                    attribute: "segment".into(),
                    value: "top".into(),
                    targets: vec!["gold".into(), "premium".into()]
                },
            ]
        );
    }

    #[test]
    fn values_of_an_attribute_no_column_fills_are_refused() {
        let header = ["email", "city"].map(String::from).to_vec();
        let problems = resolve_plan(
            &header,
            &catalog(),
            &[],
            &value_mappings(&["segment:a=gold"]),
            &[],
        )
        .expect_err("refused")
        .problems;
        assert_eq!(
            problems,
            vec![MappingProblem::ValueMapUnmapped {
                attribute: "segment".into()
            }]
        );
    }

    #[test]
    fn a_sample_lists_each_unfit_value_once_with_its_count_reading_and_suggestion() {
        let catalog = catalog();
        let segment = catalog
            .iter()
            .find(|a| a.key == "segment")
            .expect("segment");
        let newsletter = catalog
            .iter()
            .find(|a| a.key == "newsletter")
            .expect("newsletter");
        let mut maps = ValueMaps::new();
        maps.entry("segment".into())
            .or_default()
            .insert("vip".into(), "premium".into());
        let unfit = unfit_column(
            "Segment",
            segment,
            [
                "Premium",
                "VIP",
                "prem",
                "",
                "vip ",
                "Gold member",
                "Vip",
                "other",
            ],
            &maps,
        )
        .expect("some values do not fit");
        assert_eq!(unfit.allowed, ["premium", "standard", "gold"]);
        let seen: Vec<(&str, usize, Option<&str>, Option<&str>)> = unfit
            .values
            .iter()
            .map(|v| {
                (
                    v.value.as_str(),
                    v.cells,
                    v.mapped_to.as_deref(),
                    v.suggestion.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("VIP", 3, Some("premium"), None),
                ("prem", 1, None, Some("premium")),
                ("Gold member", 1, None, Some("gold")),
                ("other", 1, None, None),
            ]
        );
        let unfit = unfit_column(
            "Zgoda",
            newsletter,
            [
                "tak",
                "ja",
                "Nein",
                "maybe",
                "x",
                "j\u{FFFD}",
                "ja ".repeat(100).as_str(),
            ],
            &ValueMaps::new(),
        )
        .expect("some do not fit");
        assert_eq!(unfit.allowed, ["true", "false"]);
        let suggestions: Vec<_> = unfit
            .values
            .iter()
            .map(|v| (v.value.as_str(), v.suggestion.as_deref()))
            .collect();
        assert_eq!(
            suggestions,
            [
                ("ja", Some("true")),
                ("Nein", Some("false")),
                ("maybe", None),
                ("x", None)
            ]
        );
        assert_eq!(
            unfit_column("Segment", segment, ["gold", ""], &ValueMaps::new()),
            None
        );
        let gender = enum_attribute("gender", &["F", "M"]);
        let unfit =
            unfit_column("Płeć", &gender, ["maybe", "K"], &ValueMaps::new()).expect("unfit");
        assert!(unfit.values.iter().all(|value| value.suggestion.is_none()));
    }

    #[test]
    fn a_column_with_many_distinct_values_lists_the_first_fifty() {
        let catalog = catalog();
        let segment = catalog
            .iter()
            .find(|a| a.key == "segment")
            .expect("segment");
        let cells: Vec<String> = (0..80).map(|n| format!("value {n}")).collect();
        let unfit = unfit_column(
            "Segment",
            segment,
            cells.iter().map(String::as_str),
            &ValueMaps::new(),
        )
        .expect("unfit");
        assert_eq!(unfit.values.len(), MAX_UNFIT_VALUES);
        assert_eq!(unfit.values[49].value, "value 49");
    }

    #[test]
    fn value_mapping_options_parse_with_their_problem_named() {
        let parsed: ValueMapping = " segment : Gold member = gold ".parse().expect("parses");
        assert_eq!(
            parsed,
            ValueMapping {
                attribute: "segment".into(),
                value: "Gold member".into(),
                allowed: "gold".into()
            }
        );
        assert_eq!(parsed.to_string(), "segment:Gold member=gold");
        let a_in_value: ValueMapping = "tier:a=b=c".parse().expect("parses");
        assert_eq!(
            (a_in_value.value.as_str(), a_in_value.allowed.as_str()),
            ("a=b", "c")
        );
        for (text, problem) in [
            ("segment=gold", "no ':'"),
            ("segment:gold", "no '='"),
            (":x=gold", "the attribute is empty"),
            ("segment: =gold", "the value is empty"),
            ("segment:x=", "the allowed value is empty"),
        ] {
            assert_eq!(
                text.parse::<ValueMapping>(),
                Err(format!(
                    "expected ATTRIBUTE:VALUE=ALLOWED, got \"{text}\" ({problem})"
                ))
            );
        }
    }
}
