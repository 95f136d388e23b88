//! Java `.properties` files, read to the letter of `java.util.Properties.load`.

/// One key/value pair and the line it started on (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// The key, with escapes resolved.
    pub key: String,
    /// The value, with escapes resolved.
    pub value: String,
    /// Line number (1-based) where the logical line starts.
    pub line: usize,
}

/// Parses a properties file (bytes read as ISO-8859-1, as `Properties.load(InputStream)` does).
pub fn parse(bytes: &[u8]) -> Result<Vec<Property>, PropertiesError> {
    let _ = bytes;
    Ok(Vec::new())
}

/// A malformed properties file (only a bad `\uXXXX` escape is an error in Java).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertiesError {
    /// 1-based line of the problem.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for PropertiesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for PropertiesError {}
