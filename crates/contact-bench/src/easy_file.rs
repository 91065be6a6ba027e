//! The easy file of the first benchmarks: seven columns, unique emails (so even a plain
//! `INSERT … ON CONFLICT` never meets one email twice in a statement), Polish mobiles, names,
//! cities, companies and birthdays, every value valid.

use std::io::Write;

use crate::files::{Column, ColumnKind, ExpectedCounts};

pub const COLUMNS: &[Column] = &[
    column("email", ColumnKind::Email),
    column("first_name", ColumnKind::Text),
    column("last_name", ColumnKind::Text),
    column("mobile", ColumnKind::Text),
    column("city", ColumnKind::Text),
    column("company", ColumnKind::Text),
    column("birthday", ColumnKind::Date),
];

const fn column(name: &'static str, kind: ColumnKind) -> Column {
    Column { name, kind }
}

/// Writes the file; every row creates a contact.
pub fn write(out: &mut dyn Write, rows: usize, edition: usize) -> std::io::Result<ExpectedCounts> {
    let cities = [
        "Kraków", "Warszawa", "Gdańsk", "Poznań", "Wrocław", "Łódź", "Szczecin", "Lublin",
    ];
    let header: Vec<&str> = COLUMNS.iter().map(|column| column.name).collect();
    writeln!(out, "{}", header.join(","))?;
    for index in 0..rows {
        writeln!(
            out,
            "person{index}@example.com,Name{index}{},Surname{},5{:08},{},\"Company {}, Ltd\",19{:02}-{:02}-{:02}",
            ["", "b", "c"][edition % 3],
            index % 977,
            index % 100_000_000,
            cities[(index + edition) % cities.len()],
            index % 1000,
            50 + index % 50,
            1 + index % 12,
            1 + index % 28
        )?;
    }
    Ok(ExpectedCounts {
        rows: rows as u64,
        failed: 0,
        created: rows as u64,
        linked: 0,
    })
}
