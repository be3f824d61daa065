//! Comparing two flattened answers: what is normalised away before comparing (values that legitimately
//! differ between two brokers), the differences that remain, and the allow-list of intended ones.

use std::collections::BTreeMap;
use std::fmt;

use super::flatten::Field;

/// How a normalised field is rewritten before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalise {
    /// Whatever the value, it is not compared (ports the OS picked, throttle times).
    Any,
    /// Generated values (ids, free-text messages): only whether one is set is compared, so `None`,
    /// `-1`, `0`, `""` and the zero uuid stay as they are and anything else becomes `<set>`.
    Generated,
}

/// A field (by glob over its path with list indexes erased, e.g. `brokers[].port`) and how it is
/// normalised.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub path: &'static str,
    pub how: Normalise,
}

/// What legitimately differs between two single-node brokers started with the same configuration and
/// the same cluster id. Everything else is compared.
pub const RULES: &[Rule] = &[
    // Free loopback ports picked per run.
    Rule {
        path: "port",
        how: Normalise::Any,
    },
    Rule {
        path: "*.port",
        how: Normalise::Any,
    },
    // Quotas are not configured; a broker may still report time spent.
    Rule {
        path: "*throttle_time_ms",
        how: Normalise::Any,
    },
    // Generated per topic, member, session.
    Rule {
        path: "*topic_id",
        how: Normalise::Generated,
    },
    Rule {
        path: "*member_id",
        how: Normalise::Generated,
    },
    Rule {
        path: "*leader",
        how: Normalise::Generated,
    },
    Rule {
        path: "*session_id",
        how: Normalise::Generated,
    },
    // Free text written for people; its presence is compared, its wording is not.
    Rule {
        path: "*error_message",
        how: Normalise::Generated,
    },
    Rule {
        path: "*documentation",
        how: Normalise::Generated,
    },
];

/// `pattern` against `text`, where `*` matches any run of characters (dots included).
pub fn glob(pattern: &str, text: &str) -> bool {
    fn rec(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|i| rec(rest, t.get(i..).unwrap_or_default())),
            Some((c, rest)) => t.split_first().is_some_and(|(d, t)| c == d && rec(rest, t)),
        }
    }
    rec(pattern.as_bytes(), text.as_bytes())
}

/// `topics[3].partitions[0].error_code` → `topics[].partitions[].error_code`, the form rules and the
/// allow-list are written in.
pub fn erase_indexes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

fn is_unset(value: &str) -> bool {
    matches!(
        value,
        "None" | "-1" | "0" | "\"\"" | "[]" | "00000000-0000-0000-0000-000000000000"
    )
}

/// Applies [`RULES`] (and `extra`) to every field.
pub fn normalise(fields: Vec<Field>, extra: &[Rule]) -> Vec<Field> {
    fields
        .into_iter()
        .map(|mut f| {
            let erased = erase_indexes(&f.path);
            if let Some(rule) = RULES
                .iter()
                .chain(extra)
                .find(|r| glob(r.path, &erased) || glob(r.path, &f.path))
            {
                f.value = match rule.how {
                    Normalise::Any => "<any>".to_string(),
                    Normalise::Generated if is_unset(&f.value) => f.value,
                    Normalise::Generated => "<set>".to_string(),
                };
            }
            f
        })
        .collect()
}

/// One field whose value differs between the two brokers (after normalising).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub scenario: String,
    pub api: String,
    pub version: i16,
    pub path: String,
    /// `<absent>` when only the other broker's answer has this field (a longer list, say).
    pub kafka: String,
    pub kraftwerk: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {} v{} {}: kafka={} kraftwerk={}",
            self.scenario, self.api, self.version, self.path, self.kafka, self.kraftwerk
        )
    }
}

const ABSENT: &str = "<absent>";

/// The fields that differ, in Kafka's field order (then fields only Kraftwerk has).
pub fn diff(kafka: &[Field], kraftwerk: &[Field]) -> Vec<(String, String, String)> {
    let theirs: BTreeMap<&str, &str> = kraftwerk
        .iter()
        .map(|f| (f.path.as_str(), f.value.as_str()))
        .collect();
    let ours: BTreeMap<&str, &str> = kafka
        .iter()
        .map(|f| (f.path.as_str(), f.value.as_str()))
        .collect();
    let mut out = Vec::new();
    let mut reported = std::collections::BTreeSet::new();
    for f in kafka {
        match theirs.get(f.path.as_str()) {
            Some(other) if *other == f.value => {}
            Some(other) => out.push((f.path.clone(), f.value.clone(), other.to_string())),
            None => {
                let missing = missing_prefix(&f.path, &theirs);
                if reported.insert(missing.clone()) {
                    let value = if missing == f.path {
                        f.value.clone()
                    } else {
                        PRESENT.to_string()
                    };
                    out.push((missing, value, ABSENT.to_string()));
                }
            }
        }
    }
    for f in kraftwerk {
        if !ours.contains_key(f.path.as_str()) {
            let missing = missing_prefix(&f.path, &ours);
            if reported.insert(missing.clone()) {
                let value = if missing == f.path {
                    f.value.clone()
                } else {
                    PRESENT.to_string()
                };
                out.push((missing, ABSENT.to_string(), value));
            }
        }
    }
    out
}

const PRESENT: &str = "<present>";

/// The shortest prefix of `path` ending in a list element (`...]`) that `other` has nothing under, so a
/// list element one side lacks is reported once, not once per field; else `path` itself.
fn missing_prefix(path: &str, other: &BTreeMap<&str, &str>) -> String {
    for (i, c) in path.char_indices() {
        if c == ']' {
            let prefix = &path[..=i];
            if !other.keys().any(|k| k.starts_with(prefix)) {
                return prefix.to_string();
            }
        }
    }
    path.to_string()
}

/// Whether a listed difference is meant to stay, or is a known gap not fixed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Kraftwerk answers differently on purpose; the reason says why.
    Intended,
    /// A real difference found and not fixed yet; the reason says what is missing. Listed so that a new
    /// difference still fails the test while these are worked off.
    Known,
}

/// One row of the allow-list: globs over scenario, API name and field path (matched with list keys erased,
/// `configs[]`, or as they are, `configs[retention.ms]`), its kind
/// and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    pub scenario: String,
    pub api: String,
    pub path: String,
    pub kind: Kind,
    pub reason: String,
}

/// Reads the allow-list: Markdown tables `| scenario | api | field | kind | reason |` (kind `intended` or
/// `known`); every other line is prose. Cells may quote their glob in backticks.
pub fn parse_allow_list(text: &str) -> Result<Vec<Allowed>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with('|') {
            continue;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().trim_matches('`').to_string())
            .collect();
        let header = cells
            .first()
            .is_some_and(|c| c == "scenario" || c.starts_with("--"));
        if header {
            continue;
        }
        match cells.as_slice() {
            [scenario, api, path, kind, reason] if !reason.is_empty() => {
                let kind = match kind.as_str() {
                    "intended" => Kind::Intended,
                    "known" => Kind::Known,
                    other => {
                        return Err(format!(
                            "line {}: kind {other:?} is neither intended nor known",
                            n + 1
                        ))
                    }
                };
                out.push(Allowed {
                    scenario: scenario.clone(),
                    api: api.clone(),
                    path: path.clone(),
                    kind,
                    reason: reason.clone(),
                })
            }
            _ => {
                return Err(format!(
                    "line {}: expected | scenario | api | field | kind | reason | with a reason",
                    n + 1
                ))
            }
        }
    }
    Ok(out)
}

impl Allowed {
    pub fn covers(&self, d: &Difference) -> bool {
        glob(&self.scenario, &d.scenario)
            && glob(&self.api, &d.api)
            && (glob(&self.path, &erase_indexes(&d.path)) || glob(&self.path, &d.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(path: &str, value: &str) -> Field {
        Field {
            path: path.into(),
            value: value.into(),
        }
    }

    #[test]
    fn globs_and_erased_indexes() {
        assert!(glob("*.port", "brokers[].port"));
        assert!(!glob("*.port", "port"));
        assert!(glob("port", "port"));
        assert!(glob("*", ""));
        assert!(!glob("a*c", "abd"));
        assert_eq!(erase_indexes("t[12].p[0].x"), "t[].p[].x");
    }

    #[test]
    fn normalising_keeps_unset_values_and_hides_generated_ones() {
        let fields = vec![
            field("brokers[0].port", "9092"),
            field("topics[0].topic_id", "00000000-0000-0000-0000-000000000000"),
            field("topics[1].topic_id", "1b5c0e52-5b16-4f0e-9a4a-2b7e6c7d8e9f"),
            field("error_message", "None"),
            field("topics[0].error_code", "3"),
        ];
        let values: Vec<String> = normalise(fields, &[])
            .into_iter()
            .map(|f| f.value)
            .collect();
        assert_eq!(
            values,
            vec![
                "<any>",
                "00000000-0000-0000-0000-000000000000",
                "<set>",
                "None",
                "3"
            ]
        );
    }

    #[test]
    fn diff_names_changed_missing_and_extra_fields() {
        let kafka = vec![
            field("a", "1"),
            field("b[0]", "x"),
            field("b[1]", "y"),
            field("t[k].x", "1"),
            field("t[k].y", "2"),
        ];
        let kraftwerk = vec![field("a", "2"), field("b[0]", "x"), field("c", "z")];
        assert_eq!(
            diff(&kafka, &kraftwerk),
            vec![
                ("a".into(), "1".into(), "2".into()),
                ("b[1]".into(), "y".into(), ABSENT.into()),
                ("t[k]".into(), PRESENT.into(), ABSENT.into()),
                ("c".into(), ABSENT.into(), "z".into()),
            ]
        );
        assert!(diff(&kafka, &kafka).is_empty());
    }

    #[test]
    fn allow_list_rows_cover_by_glob_and_need_a_reason() {
        let text = "# Intended\n\n| scenario | api | field | kind | reason |\n|---|---|---|---|---|\n| `metadata*` | Metadata | `topics[].x` | intended | because |\n";
        let rows = parse_allow_list(text).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].kind, Kind::Intended);
        let d = Difference {
            scenario: "metadata all".into(),
            api: "Metadata".into(),
            version: 12,
            path: "topics[4].x".into(),
            kafka: "1".into(),
            kraftwerk: "2".into(),
        };
        assert!(rows[0].covers(&d));
        assert!(!rows[0].covers(&Difference {
            api: "Fetch".into(),
            ..d
        }));
        assert!(parse_allow_list("| a | b | c | intended | |").is_err());
        assert!(parse_allow_list("| a | b | c | maybe | why |").is_err());
    }
}
