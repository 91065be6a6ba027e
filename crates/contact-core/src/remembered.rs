//! Owns a remembered mapping: an earlier import's plan turned back into the choices that
//! would make it again, so a file with the same columns starts where the last one ended.
//!
//! The catalog may have changed since: a choice it no longer allows is dropped, not offered,
//! and the user maps that column or value afresh.

use crate::mapping::{find_attribute, AttributeDef, ColumnMapping, MappingPlan};
use crate::value_map::{resolve_value_maps, ValueMapping};

/// The column choices and value maps of `plan` that `catalog` still allows.
///
/// A column the plan left out comes back as a mapping to `""` (kept out), so a column named
/// like an attribute stays out as the user chose; a column whose attribute is gone is not
/// named at all, and the usual suggestion applies.
pub fn choices_of_plan(
    plan: &MappingPlan,
    catalog: &[AttributeDef],
) -> (Vec<ColumnMapping>, Vec<ValueMapping>) {
    let columns = plan
        .header
        .iter()
        .zip(&plan.columns)
        .filter_map(|(column, attribute)| {
            let attribute = match attribute {
                None => String::new(),
                Some(attribute) => catalog[find_attribute(catalog, &attribute.key)?]
                    .key
                    .clone(),
            };
            Some(ColumnMapping {
                column: column.clone(),
                attribute,
            })
        })
        .collect::<Vec<_>>();
    let is_mapped = |key: &str| {
        columns
            .iter()
            .any(|mapping| !mapping.attribute.is_empty() && mapping.attribute == key)
    };
    let value_mappings = plan
        .value_maps
        .iter()
        .flat_map(|(attribute, map)| {
            map.iter().map(|(value, allowed)| ValueMapping {
                attribute: attribute.clone(),
                value: value.clone(),
                allowed: allowed.clone(),
            })
        })
        // Each map alone: one the catalog no longer allows does not take the others with it.
        .filter(|mapping| {
            let mut problems = Vec::new();
            resolve_value_maps(
                catalog,
                std::slice::from_ref(mapping),
                is_mapped,
                &mut problems,
            );
            problems.is_empty()
        })
        .map(|mapping| {
            let key = &catalog[find_attribute(catalog, &mapping.attribute)
                .expect("a map without problems names an attribute")]
            .key;
            ValueMapping {
                attribute: key.clone(),
                ..mapping
            }
        })
        .collect();
    (columns, value_mappings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{standard_attributes, AttributeType};
    use crate::value_map::{enum_attribute, resolve_plan};

    fn catalog() -> Vec<AttributeDef> {
        let mut catalog = standard_attributes();
        catalog.push(enum_attribute("segment", &["premium", "standard"]));
        catalog.push(AttributeDef {
            key: "newsletter".into(),
            label: "Newsletter".into(),
            attribute_type: AttributeType::Boolean,
            required: false,
            identifier: false,
        });
        catalog
    }

    fn mapping(column: &str, attribute: &str) -> ColumnMapping {
        ColumnMapping {
            column: column.into(),
            attribute: attribute.into(),
        }
    }

    fn value_mapping(attribute: &str, value: &str, allowed: &str) -> ValueMapping {
        ValueMapping {
            attribute: attribute.into(),
            value: value.into(),
            allowed: allowed.into(),
        }
    }

    fn header() -> Vec<String> {
        ["E-mail", "Kind", "News", "email"]
            .map(String::from)
            .to_vec()
    }

    fn earlier_plan(catalog: &[AttributeDef]) -> MappingPlan {
        resolve_plan(
            &header(),
            catalog,
            &[
                mapping("E-mail", "email"),
                mapping("Kind", "segment"),
                mapping("News", "newsletter"),
                mapping("email", ""),
            ],
            &[
                value_mapping("segment", "Prem", "premium"),
                value_mapping("newsletter", "Ja", "true"),
            ],
            &["email".to_owned()],
        )
        .expect("the earlier import's mapping resolves")
    }

    #[test]
    fn the_choices_make_the_same_plan_again() {
        let catalog = catalog();
        let plan = earlier_plan(&catalog);
        let (columns, values) = choices_of_plan(&plan, &catalog);
        assert_eq!(
            columns,
            vec![
                mapping("E-mail", "email"),
                mapping("Kind", "segment"),
                mapping("News", "newsletter"),
                mapping("email", ""),
            ]
        );
        assert_eq!(
            values,
            vec![
                value_mapping("newsletter", "ja", "true"),
                value_mapping("segment", "prem", "premium"),
            ]
        );
        let again = resolve_plan(&header(), &catalog, &columns, &values, &plan.match_on)
            .expect("the choices resolve");
        assert_eq!(again, plan);
    }

    #[test]
    fn what_the_catalog_no_longer_allows_is_dropped() {
        let plan = earlier_plan(&catalog());
        // Since then: the newsletter attribute was deleted, and "prem" became a segment of
        // its own, so mapping it to "premium" would now change what the file says.
        let mut catalog: Vec<AttributeDef> = catalog()
            .into_iter()
            .filter(|attribute| attribute.key != "newsletter")
            .collect();
        for attribute in &mut catalog {
            if attribute.key == "segment" {
                *attribute = enum_attribute("segment", &["premium", "standard", "prem"]);
            }
        }
        let (columns, values) = choices_of_plan(&plan, &catalog);
        assert_eq!(
            columns,
            vec![
                mapping("E-mail", "email"),
                mapping("Kind", "segment"),
                mapping("email", ""),
            ]
        );
        assert_eq!(values, Vec::<ValueMapping>::new());
    }

    #[test]
    fn keys_are_spelled_as_the_catalog_spells_them_today() {
        let plan = earlier_plan(&catalog());
        let catalog: Vec<AttributeDef> = catalog()
            .into_iter()
            .map(|mut attribute| {
                if attribute.key == "segment" {
                    attribute.key = "Segment".into();
                }
                attribute
            })
            .collect();
        let (columns, values) = choices_of_plan(&plan, &catalog);
        assert!(columns.contains(&mapping("Kind", "Segment")));
        assert!(values.contains(&value_mapping("Segment", "prem", "premium")));
    }
}
