//! A minimal JSON writer: the library needs to emit JSON, never to parse it, so a value
//! tree and an escaper are all there is.

/// A JSON value. Numbers are unsigned integers: nothing here needs more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Num(u64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(&'static str, Json)>),
}

impl Json {
    pub(crate) fn str(s: impl Into<String>) -> Self {
        Self::Str(s.into())
    }

    pub(crate) fn opt_str(s: Option<impl Into<String>>) -> Self {
        s.map_or(Self::Null, |s| Self::Str(s.into()))
    }

    /// Pretty-printed with two-space indentation and a final newline.
    pub(crate) fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let pad = |out: &mut String, d: usize| {
            out.push('\n');
            out.extend(std::iter::repeat_n("  ", d));
        };
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Num(n) => out.push_str(&n.to_string()),
            Self::Str(s) => escape_into(out, s),
            Self::Arr(items) if items.is_empty() => out.push_str("[]"),
            Self::Obj(items) if items.is_empty() => out.push_str("{}"),
            Self::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(out, depth + 1);
                    v.write(out, depth + 1);
                }
                pad(out, depth);
                out.push(']');
            }
            Self::Obj(items) => {
                out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(out, depth + 1);
                    escape_into(out, k);
                    out.push_str(": ");
                    v.write(out, depth + 1);
                }
                pad(out, depth);
                out.push('}');
            }
        }
    }
}

/// Writes a JSON string literal. `<`, `>`, `&` and the JavaScript line separators are
/// escaped as well, so the output is safe to embed anywhere.
fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_dangerous() {
        let v = Json::Obj(vec![(
            "k",
            Json::Arr(vec![
                Json::str("a\"b\\c\n\u{1}<script>&\u{2028}"),
                Json::Num(7),
                Json::Null,
            ]),
        )]);
        let s = v.to_pretty();
        assert_eq!(
            s,
            "{\n  \"k\": [\n    \"a\\\"b\\\\c\\n\\u0001\\u003cscript\\u003e\\u0026\\u2028\",\n    7,\n    null\n  ]\n}\n"
        );
        assert_eq!(Json::Arr(vec![]).to_pretty(), "[]\n");
    }
}
