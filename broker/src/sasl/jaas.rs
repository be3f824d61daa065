//! The JAAS text Kafka takes in `sasl.jaas.config`:
//! `org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" user_alice="secret";`
//!
//! Kafka requires exactly one login module per value; options are `name=value` with the value bare or in double
//! quotes (a backslash escapes the next character inside quotes, as Java's `StreamTokenizer` does). Pure parsing,
//! so a typo stops the start with the position of the mistake.

use std::collections::BTreeMap;

/// One parsed `sasl.jaas.config` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasEntry {
    pub login_module: String,
    pub flag: ControlFlag,
    pub options: BTreeMap<String, String>,
}

/// JAAS control flags; Kafka accepts all four and they mean nothing with one module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlFlag {
    Required,
    Requisite,
    Sufficient,
    Optional,
}

/// Why a JAAS value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JaasError {
    #[error("expected a login module class name")]
    MissingModule,
    #[error("expected a control flag (required, requisite, sufficient or optional) after {0}, found {1:?}")]
    BadFlag(String, String),
    #[error("expected name=value at character {0}")]
    BadOption(usize),
    #[error("unterminated quoted value starting at character {0}")]
    Unterminated(usize),
    #[error("the login module entry must end with ';'")]
    MissingSemicolon,
    #[error("option {0} is given twice")]
    DuplicateOption(String),
    #[error(
        "more than one login module: Kafka's sasl.jaas.config takes exactly one (found text after ';')"
    )]
    MoreThanOne,
}

/// Parses a `sasl.jaas.config` value.
pub fn parse(text: &str) -> Result<JaasEntry, JaasError> {
    let chars: Vec<char> = text.chars().collect();
    let mut pos = 0;
    let skip_ws = |pos: &mut usize| {
        while *pos < chars.len() && chars[*pos].is_whitespace() {
            *pos += 1;
        }
    };
    let word = |pos: &mut usize| -> String {
        let start = *pos;
        while *pos < chars.len()
            && !chars[*pos].is_whitespace()
            && chars[*pos] != ';'
            && chars[*pos] != '='
            && chars[*pos] != '"'
        {
            *pos += 1;
        }
        chars[start..*pos].iter().collect()
    };
    skip_ws(&mut pos);
    let login_module = word(&mut pos);
    if login_module.is_empty() {
        return Err(JaasError::MissingModule);
    }
    skip_ws(&mut pos);
    let flag_text = word(&mut pos);
    let flag = match flag_text.to_ascii_lowercase().as_str() {
        "required" => ControlFlag::Required,
        "requisite" => ControlFlag::Requisite,
        "sufficient" => ControlFlag::Sufficient,
        "optional" => ControlFlag::Optional,
        _ => return Err(JaasError::BadFlag(login_module, flag_text)),
    };
    let mut options = BTreeMap::new();
    loop {
        skip_ws(&mut pos);
        match chars.get(pos) {
            None => return Err(JaasError::MissingSemicolon),
            Some(';') => {
                pos += 1;
                break;
            }
            Some(_) => {}
        }
        let name_at = pos;
        let name = word(&mut pos);
        skip_ws(&mut pos);
        if name.is_empty() || chars.get(pos) != Some(&'=') {
            return Err(JaasError::BadOption(name_at));
        }
        pos += 1;
        skip_ws(&mut pos);
        let value = if chars.get(pos) == Some(&'"') {
            let open = pos;
            pos += 1;
            let mut value = String::new();
            loop {
                match chars.get(pos) {
                    None => return Err(JaasError::Unterminated(open)),
                    Some('"') => {
                        pos += 1;
                        break;
                    }
                    Some('\\') => {
                        let Some(c) = chars.get(pos + 1) else {
                            return Err(JaasError::Unterminated(open));
                        };
                        value.push(*c);
                        pos += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        pos += 1;
                    }
                }
            }
            value
        } else {
            let v = word(&mut pos);
            if v.is_empty() {
                return Err(JaasError::BadOption(name_at));
            }
            v
        };
        if options.insert(name.clone(), value).is_some() {
            return Err(JaasError::DuplicateOption(name));
        }
    }
    skip_ws(&mut pos);
    if pos < chars.len() {
        return Err(JaasError::MoreThanOne);
    }
    Ok(JaasEntry {
        login_module,
        flag,
        options,
    })
}

impl JaasEntry {
    /// The `user_<name>="<password>"` options of Kafka's PlainLoginModule: the users a broker accepts.
    pub fn plain_users(&self) -> BTreeMap<String, String> {
        self.options
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("user_")
                    .filter(|u| !u.is_empty())
                    .map(|u| (u.to_string(), v.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" \
                         password=\"admin-secret\" user_admin=\"admin-secret\" user_alice=\"alice-secret\";";

    #[test]
    fn parses_kafkas_plain_example() {
        let e = parse(PLAIN).unwrap();
        assert_eq!(
            e.login_module,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(e.flag, ControlFlag::Required);
        assert_eq!(e.options["username"], "admin");
        let users = e.plain_users();
        assert_eq!(users.len(), 2);
        assert_eq!(users["alice"], "alice-secret");
        assert_eq!(users["admin"], "admin-secret");
    }

    #[test]
    fn bare_values_escapes_and_whitespace() {
        let e = parse("  M  optional\n a=b  c = \"x\\\"y;z\" d=\"\" ;  ").unwrap();
        assert_eq!(e.flag, ControlFlag::Optional);
        assert_eq!(e.options["a"], "b");
        assert_eq!(e.options["c"], "x\"y;z");
        assert_eq!(e.options["d"], "");
        let e = parse("M REQUIRED;").unwrap();
        assert!(e.options.is_empty());
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(parse(""), Err(JaasError::MissingModule));
        assert!(matches!(
            parse("M mandatory a=b;"),
            Err(JaasError::BadFlag(..))
        ));
        assert_eq!(parse("M required a=b"), Err(JaasError::MissingSemicolon));
        assert_eq!(parse("M required a=\"b;"), Err(JaasError::Unterminated(13)));
        assert!(matches!(
            parse("M required a;"),
            Err(JaasError::BadOption(_))
        ));
        assert!(matches!(
            parse("M required =b;"),
            Err(JaasError::BadOption(_))
        ));
        assert_eq!(
            parse("M required a=1 a=2;"),
            Err(JaasError::DuplicateOption("a".into()))
        );
        assert_eq!(
            parse("M required; N required;"),
            Err(JaasError::MoreThanOne)
        );
    }
}
