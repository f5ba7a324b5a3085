//! `account_info.html`: the same data as the JSON, for people. Self-contained (no
//! scripts, no external resources, a Content-Security-Policy that forbids both) and every
//! string escaped, so a group named `<script>` is shown, never run.

use super::json::Json;
use super::report::AccountReport;
use crate::policy::format_utc;

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Section headings for the report's top-level keys.
const SECTIONS: &[(&str, &str)] = &[
    ("registration", "Registration"),
    ("profile", "Profile"),
    ("privacy_settings", "Privacy settings"),
    ("devices", "Linked devices"),
    ("groups", "Groups"),
    ("business_chats", "Business chats"),
    ("identity_assurance", "Contacts' security codes"),
    ("backup", "Backups"),
    ("legacy_opt_out", "2016 opt-out"),
    ("account_state", "Account status"),
    ("account_state_history", "Account status history"),
    ("consent_history", "Policy consent history"),
    ("data_sharing", "How your data is shared"),
];

fn label(key: &str) -> String {
    let mut s = key.replace('_', " ");
    if let Some(first) = s.get(..1) {
        let up = first.to_uppercase();
        s.replace_range(..1, &up);
    }
    s
}

fn scalar(v: &Json) -> Option<String> {
    match v {
        Json::Null => Some("—".to_owned()),
        Json::Bool(true) => Some("Yes".to_owned()),
        Json::Bool(false) => Some("No".to_owned()),
        Json::Num(n) => Some(n.to_string()),
        Json::Str(s) => Some(escape(s)),
        Json::Arr(_) | Json::Obj(_) => None,
    }
}

fn render(v: &Json, out: &mut String) {
    if let Some(s) = scalar(v) {
        out.push_str(&s);
        return;
    }
    match v {
        Json::Obj(items) => {
            out.push_str("<table class=\"kv\">");
            for (k, v) in items {
                out.push_str("<tr><th scope=\"row\">");
                out.push_str(&escape(&label(k)));
                out.push_str("</th><td>");
                render(v, out);
                out.push_str("</td></tr>");
            }
            out.push_str("</table>");
        }
        Json::Arr(items) if items.is_empty() => out.push_str("<p class=\"none\">None</p>"),
        Json::Arr(items) => {
            if let Some(Json::Obj(first)) = items.first() {
                out.push_str("<table class=\"list\"><thead><tr>");
                for (k, _) in first {
                    out.push_str("<th scope=\"col\">");
                    out.push_str(&escape(&label(k)));
                    out.push_str("</th>");
                }
                out.push_str("</tr></thead><tbody>");
                for item in items {
                    out.push_str("<tr>");
                    if let Json::Obj(fields) = item {
                        for (_, v) in fields {
                            out.push_str("<td>");
                            render(v, out);
                            out.push_str("</td>");
                        }
                    }
                    out.push_str("</tr>");
                }
                out.push_str("</tbody></table>");
            } else {
                out.push_str("<ul>");
                for item in items {
                    out.push_str("<li>");
                    render(item, out);
                    out.push_str("</li>");
                }
                out.push_str("</ul>");
            }
        }
        _ => {}
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#111;line-height:1.45}\
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.4em 0}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}\
table.kv th{background:#f5f5f5;width:14em}table.list th{background:#f0f0f0}\
.summary{background:#eef6ff;border:1px solid #b8d4f0;padding:.8em 1em}.none{color:#666}";

impl AccountReport {
    /// `account_info.html`: one self-contained page.
    pub fn to_html(&self) -> String {
        let mut out = String::new();
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">");
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        out.push_str("<title>Account information</title><style>");
        out.push_str(STYLE);
        out.push_str("</style></head><body><h1>Account information</h1>");
        out.push_str("<p>Generated ");
        out.push_str(&escape(&format_utc(self.generated_at)));
        out.push_str(". This report holds your account information and settings. It does not contain your messages.</p>");
        out.push_str("<div class=\"summary\"><p id=\"opt-out\"><strong>2016 opt-out:</strong> ");
        out.push_str(&escape(&self.opt_out_statement));
        out.push_str("</p><p id=\"status\"><strong>Account status:</strong> ");
        out.push_str(&escape(self.state_description));
        out.push_str("</p></div>");
        if let Json::Obj(items) = &self.json {
            for (key, title) in SECTIONS {
                if let Some((_, v)) = items.iter().find(|(k, _)| k == key) {
                    out.push_str("<section id=\"");
                    out.push_str(&escape(key));
                    out.push_str("\"><h2>");
                    out.push_str(&escape(title));
                    out.push_str("</h2>");
                    render(v, &mut out);
                    out.push_str("</section>");
                }
            }
        }
        out.push_str("</body></html>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<img src=x onerror='a'>&\""),
            "&lt;img src=x onerror=&#39;a&#39;&gt;&amp;&quot;"
        );
        assert_eq!(label("default_message_timer"), "Default message timer");
    }
}
