//! Turns a response's `Debug` text into `(field path, value)` lines, so two brokers' answers can be
//! compared field by field and every difference named by where it is (`topics[0].partitions[1].error_code`).
//!
//! kafka-protocol derives `Debug` for every message, so this works for any API without per-API code. The
//! parser reads Rust's compact `{:?}` grammar: `Name { field: value, .. }`, `Name(value, ..)`, `[..]`,
//! `{key: value, ..}` (maps), string and byte-string literals, and bare tokens (numbers, `None`, uuids).
//! Single-value wrappers (`Some(x)`, `BrokerId(1)`, `TopicName("t")`) collapse to their value, so paths
//! stay readable and `None` against `Some(x)` shows as `None` against `x`.

/// One leaf of a response: its path from the root and its value as Debug printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub path: String,
    pub value: String,
}

/// Why a Debug text could not be read (a kafka-protocol type printing something the grammar lacks).
#[derive(Debug, thiserror::Error)]
#[error("cannot flatten Debug output at byte {at}: {reason}")]
pub struct FlattenError {
    pub at: usize,
    pub reason: &'static str,
}

/// Flattens `value`'s Debug representation into leaves, in order.
pub fn flatten(value: &impl std::fmt::Debug) -> Result<Vec<Field>, FlattenError> {
    flatten_text(&format!("{value:?}"))
}

/// Flattens compact Debug text (see the module docs for the grammar).
pub fn flatten_text(text: &str) -> Result<Vec<Field>, FlattenError> {
    let mut parser = Parser {
        text: text.as_bytes(),
        pos: 0,
        out: Vec::new(),
    };
    parser.value(String::new())?;
    parser.skip_ws();
    if parser.pos != parser.text.len() {
        return Err(parser.error("trailing text"));
    }
    Ok(parser.out)
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
    out: Vec<Field>,
}

const PUNCT: &[u8] = b"{}[](),:";

/// Fields that identify an element of a list (see `Parser::key_elements`), in order of preference.
const KEY_FIELDS: &[&str] = &[
    "name",
    "topic",
    "partition_index",
    "partition",
    "resource_name",
    "key",
    "node_id",
];

impl Parser<'_> {
    fn error(&self, reason: &'static str) -> FlattenError {
        FlattenError {
            at: self.pos,
            reason,
        }
    }

    fn skip_ws(&mut self) {
        while self.text.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.text.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8, reason: &'static str) -> Result<(), FlattenError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(reason))
        }
    }

    fn leaf(&mut self, path: &str, value: String) {
        self.out.push(Field {
            path: if path.is_empty() {
                "<root>".to_string()
            } else {
                path.to_string()
            },
            value,
        });
    }

    /// A quoted string (after an optional `b`), escapes kept as printed.
    fn string(&mut self) -> Result<String, FlattenError> {
        let start = self.pos;
        if self.text.get(self.pos) == Some(&b'b') {
            self.pos += 1;
        }
        self.pos += 1; // the opening quote
        loop {
            match self.text.get(self.pos) {
                None => return Err(self.error("unterminated string")),
                Some(b'\\') => self.pos += 2,
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(_) => self.pos += 1,
            }
        }
        let s = self.text.get(start..self.pos).unwrap_or_default();
        Ok(String::from_utf8_lossy(s).into_owned())
    }

    /// A bare token: everything up to whitespace or punctuation.
    fn token(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.text.get(self.pos) {
            if c.is_ascii_whitespace() || PUNCT.contains(c) {
                break;
            }
            self.pos += 1;
        }
        String::from_utf8_lossy(self.text.get(start..self.pos).unwrap_or_default()).into_owned()
    }

    fn value(&mut self, path: String) -> Result<(), FlattenError> {
        match self.peek() {
            None => Err(self.error("value expected")),
            Some(b'"') => {
                let s = self.string()?;
                self.leaf(&path, s);
                Ok(())
            }
            Some(b'b') if self.text.get(self.pos + 1) == Some(&b'"') => {
                let s = self.string()?;
                self.leaf(&path, s);
                Ok(())
            }
            Some(b'[') => self.list(path),
            Some(b'{') => self.map(path),
            Some(c) if PUNCT.contains(&c) => Err(self.error("unexpected punctuation")),
            Some(_) => {
                let token = self.token();
                match self.peek() {
                    Some(b'{') => self.strukt(path),
                    Some(b'(') => self.tuple(path),
                    _ => {
                        self.leaf(&path, token);
                        Ok(())
                    }
                }
            }
        }
    }

    fn list(&mut self, path: String) -> Result<(), FlattenError> {
        self.expect(b'[', "[ expected")?;
        let mark = self.out.len();
        let mut i = 0;
        while self.peek() != Some(b']') {
            self.value(format!("{path}[{i}]"))?;
            i += 1;
            if self.peek() == Some(b',') {
                self.pos += 1;
            }
        }
        self.pos += 1;
        if i == 0 {
            self.leaf(&path, "[]".to_string());
        } else {
            self.key_elements(&path, i, mark);
        }
        Ok(())
    }

    /// Lists of named things (topics, configs, partitions) are compared by name, not position: when every
    /// element has a [`KEY_FIELDS`] field with distinct values, `configs[3].value` becomes
    /// `configs[retention.ms].value`, so one missing element does not shift every later one.
    fn key_elements(&mut self, path: &str, count: usize, mark: usize) {
        let Some(keys) = KEY_FIELDS.iter().find_map(|field| {
            let keys: Vec<String> = (0..count)
                .map_while(|i| {
                    let want = format!("{path}[{i}].{field}");
                    self.out
                        .get(mark..)?
                        .iter()
                        .find(|f| f.path == want)
                        .map(|f| f.value.trim_matches('"').to_string())
                })
                .collect();
            let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
            (keys.len() == count && distinct.len() == count).then_some(keys)
        }) else {
            return;
        };
        for field in self.out.iter_mut().skip(mark) {
            let Some(rest) = field
                .path
                .strip_prefix(path)
                .and_then(|r| r.strip_prefix('['))
            else {
                continue;
            };
            let Some((index, tail)) = rest.split_once(']') else {
                continue;
            };
            if let Some(key) = index.parse::<usize>().ok().and_then(|i| keys.get(i)) {
                field.path = format!("{path}[{key}]{tail}");
            }
        }
    }

    fn map(&mut self, path: String) -> Result<(), FlattenError> {
        self.expect(b'{', "{ expected")?;
        let mut empty = true;
        while self.peek() != Some(b'}') {
            empty = false;
            let key = match self.peek() {
                Some(b'"') => self.string()?,
                _ => self.token(),
            };
            self.expect(b':', ": expected after a map key")?;
            self.value(format!("{path}{{{key}}}"))?;
            if self.peek() == Some(b',') {
                self.pos += 1;
            }
        }
        self.pos += 1;
        if empty {
            self.leaf(&path, "{}".to_string());
        }
        Ok(())
    }

    fn strukt(&mut self, path: String) -> Result<(), FlattenError> {
        self.expect(b'{', "{ expected")?;
        while self.peek() != Some(b'}') {
            let name = self.token();
            if name.is_empty() {
                return Err(self.error("field name expected"));
            }
            self.expect(b':', ": expected after a field name")?;
            let child = if path.is_empty() {
                name
            } else {
                format!("{path}.{name}")
            };
            self.value(child)?;
            if self.peek() == Some(b',') {
                self.pos += 1;
            }
        }
        self.pos += 1;
        Ok(())
    }

    /// `Name(a)` collapses to `a`; `Name(a, b)` gets indexes like a list.
    fn tuple(&mut self, path: String) -> Result<(), FlattenError> {
        self.expect(b'(', "( expected")?;
        let mark = self.out.len();
        let mut n = 0;
        while self.peek() != Some(b')') {
            self.value(format!("{path}.{n}"))?;
            n += 1;
            if self.peek() == Some(b',') {
                self.pos += 1;
            }
        }
        self.pos += 1;
        if n == 1 {
            let suffix = format!("{path}.0");
            for field in self.out.iter_mut().skip(mark) {
                if let Some(rest) = field.path.strip_prefix(&suffix) {
                    field.path = format!("{path}{rest}");
                    if field.path.is_empty() {
                        field.path = "<root>".to_string();
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        flatten_text(text)
            .unwrap()
            .into_iter()
            .map(|f| format!("{} = {}", f.path, f.value))
            .collect()
    }

    #[test]
    fn nested_structs_lists_and_wrappers_become_paths() {
        let text = r#"R { throttle_time_ms: 0, brokers: [B { node_id: BrokerId(1), host: "127.0.0.1", rack: None }], topics: [T { name: Some(TopicName("a,b")), topic_id: 00000000-0000-0000-0000-000000000000, partitions: [] }], unknown_tagged_fields: {} }"#;
        assert_eq!(
            lines(text),
            vec![
                "throttle_time_ms = 0",
                "brokers[1].node_id = 1",
                "brokers[1].host = \"127.0.0.1\"",
                "brokers[1].rack = None",
                "topics[a,b].name = \"a,b\"",
                "topics[a,b].topic_id = 00000000-0000-0000-0000-000000000000",
                "topics[a,b].partitions = []",
                "unknown_tagged_fields = {}",
            ]
        );
    }

    #[test]
    fn byte_strings_maps_and_multi_field_tuples() {
        let text = r#"X { records: Some(b"\x00\"}"), tags: {0: b"", 5: b"x"}, pair: P(1, -2) }"#;
        assert_eq!(
            lines(text),
            vec![
                r#"records = b"\x00\"}""#,
                "tags{0} = b\"\"",
                "tags{5} = b\"x\"",
                "pair.0 = 1",
                "pair.1 = -2",
            ]
        );
    }

    #[test]
    fn named_elements_are_keyed_by_name() {
        let text = r#"R { configs: [C { name: "a", value: 1 }, C { name: "b", value: 2 }], dup: [C { name: "x" }, C { name: "x" }] }"#;
        assert_eq!(
            lines(text),
            vec![
                "configs[a].name = \"a\"",
                "configs[a].value = 1",
                "configs[b].name = \"b\"",
                "configs[b].value = 2",
                "dup[0].name = \"x\"",
                "dup[1].name = \"x\"",
            ]
        );
    }

    #[test]
    fn real_messages_flatten() {
        use kafka_protocol::messages::MetadataResponse;
        let fields = flatten(&MetadataResponse::default()).unwrap();
        assert!(fields.iter().any(|f| f.path == "cluster_id"));
        assert!(flatten_text("X { a: ").is_err());
        assert!(flatten_text("X { a: 1 } extra").is_err());
    }
}
