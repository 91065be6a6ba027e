//! Where a command writes its file (`-o`): a file, or standard output for `-` or no `-o`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;

/// The destination of `template`, `errors` and `contacts export`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout,
    File(PathBuf),
}

impl Output {
    /// `-` is standard output, as for most command-line tools; anything else a file's path.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "" => Err("an empty path: give a file, or - for standard output".to_string()),
            "-" => Ok(Self::Stdout),
            path => Ok(Self::File(PathBuf::from(path))),
        }
    }

    pub fn is_file(&self) -> bool {
        matches!(self, Self::File(_))
    }

    /// Creates (or truncates) the file, or takes standard output; buffered either way.
    pub fn open(&self) -> anyhow::Result<Box<dyn Write>> {
        Ok(match self {
            Self::File(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            )),
            Self::Stdout => Box::new(std::io::BufWriter::new(std::io::stdout())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dash_means_standard_output_and_anything_else_a_file() {
        assert_eq!(Output::parse("-"), Ok(Output::Stdout));
        assert_eq!(Output::parse("./-"), Ok(Output::File(PathBuf::from("./-"))));
        assert_eq!(
            Output::parse("failed-rows.csv"),
            Ok(Output::File(PathBuf::from("failed-rows.csv")))
        );
        assert!(Output::parse("").is_err());
    }
}
