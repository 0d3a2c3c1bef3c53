//! Mail templates: a subject, a text and an HTML body per [`MailTemplate`], built in and
//! replaceable file by file from a folder, with `{{placeholder}}`s filled by our own few lines.

use std::collections::HashMap;
use std::path::Path;

use auth_core::events::MailTemplate;

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 4] = ["link", "email", "product", "expires_in_minutes"];

/// Largest template file read from the folder.
const MAX_FILE_BYTES: u64 = 256 * 1024;

/// The three parts of a mail, each a file `<template><suffix>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Subject, Part::Text, Part::Html];

    /// The file name's suffix after the template's name.
    pub fn suffix(self) -> &'static str {
        match self {
            Part::Subject => ".subject.txt",
            Part::Text => ".txt",
            Part::Html => ".html",
        }
    }
}

/// The values of the placeholders for one mail, as text (the HTML part escapes them).
#[derive(Debug, Clone, Default)]
pub struct Values {
    pub link: String,
    pub email: String,
    pub product: String,
    pub expires_in_minutes: String,
}

impl Values {
    fn get(&self, placeholder: Placeholder) -> &str {
        match placeholder {
            Placeholder::Link => &self.link,
            Placeholder::Email => &self.email,
            Placeholder::Product => &self.product,
            Placeholder::ExpiresInMinutes => &self.expires_in_minutes,
        }
    }
}

/// A mail rendered from its templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line: no CR, LF or other control character.
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    Link,
    Email,
    Product,
    ExpiresInMinutes,
}

impl Placeholder {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "link" => Self::Link,
            "email" => Self::Email,
            "product" => Self::Product,
            "expires_in_minutes" => Self::ExpiresInMinutes,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Value(Placeholder),
}

/// One parsed template file.
#[derive(Clone, PartialEq, Eq)]
struct Template(Vec<Segment>);

impl Template {
    /// Splits a text into literal text and placeholders; an unknown or unclosed one is a problem.
    fn parse(text: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                segments.push(Segment::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return Err("has a `{{` without its `}}`".to_owned());
            };
            let name = after[..end].trim();
            let placeholder = Placeholder::parse(name).ok_or_else(|| {
                format!(
                    "uses the unknown placeholder {{{{{name}}}}} (known: {})",
                    PLACEHOLDERS.join(", ")
                )
            })?;
            segments.push(Segment::Value(placeholder));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_owned()));
        }
        Ok(Self(segments))
    }

    fn render(&self, values: &Values, escape: fn(&str, &mut String)) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Value(p) => escape(values.get(*p), &mut out),
            }
        }
        out
    }
}

/// Every template's three parts: the built-in ones, some replaced from a folder.
#[derive(Clone)]
pub struct Templates {
    parts: HashMap<(MailTemplate, Part), Template>,
    /// The files read from the folder, for `Debug` and the start-up log.
    overridden: Vec<String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("overridden", &self.overridden)
            .finish()
    }
}

/// The built-in text of a template's part.
fn built_in(template: MailTemplate, part: Part) -> &'static str {
    macro_rules! files {
        ($($t:path => $name:literal),+) => {
            match (template, part) {
                $(
                    ($t, Part::Subject) => include_str!(concat!("templates/", $name, ".subject.txt")),
                    ($t, Part::Text) => include_str!(concat!("templates/", $name, ".txt")),
                    ($t, Part::Html) => include_str!(concat!("templates/", $name, ".html")),
                )+
            }
        };
    }
    files!(
        MailTemplate::PasswordReset => "password_reset",
        MailTemplate::PasswordChanged => "password_changed",
        MailTemplate::VerifyEmail => "verify_email",
        MailTemplate::SignupAttempt => "signup_attempt"
    )
}

/// A subject template: one line once the surrounding blanks are removed.
fn parse_part(part: Part, text: &str) -> Result<Template, String> {
    let text = match part {
        Part::Subject => {
            let line = text.trim();
            if line.contains(['\r', '\n']) {
                return Err("must be one line".to_owned());
            }
            line
        }
        Part::Text | Part::Html => text,
    };
    Template::parse(text)
}

impl Templates {
    /// The built-in templates.
    pub fn built_in() -> Self {
        Self::load(None).unwrap_or_else(|_| Self {
            parts: HashMap::new(),
            overridden: Vec::new(),
        })
    }

    /// The built-in templates, each file of `dir` (if any) replacing its part. Every problem
    /// is one line: an unknown file name, an unreadable file, an unknown placeholder.
    pub fn load(dir: Option<&Path>) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut parts = HashMap::new();
        for template in MailTemplate::ALL {
            for part in Part::ALL {
                match parse_part(part, built_in(template, part)) {
                    Ok(t) => {
                        parts.insert((template, part), t);
                    }
                    Err(e) => problems.push(format!(
                        "built-in {}{} {e}",
                        template.as_str(),
                        part.suffix()
                    )),
                }
            }
        }
        let mut overridden = Vec::new();
        if let Some(dir) = dir {
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) => return Err(vec![format!("cannot read {}: {e}", dir.display())]),
            };
            for entry in entries {
                let path = match entry {
                    Ok(entry) => entry.path(),
                    Err(e) => {
                        problems.push(format!("cannot read {}: {e}", dir.display()));
                        continue;
                    }
                };
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.starts_with('.') {
                    continue;
                }
                let Some((template, part)) = file_part(&name) else {
                    problems.push(format!(
                        "{}: unknown file name {name:?} (expected TEMPLATE.subject.txt, \
                         TEMPLATE.txt or TEMPLATE.html, TEMPLATE one of {})",
                        dir.display(),
                        MailTemplate::ALL.map(MailTemplate::as_str).join(", ")
                    ));
                    continue;
                };
                match read_file(&path).and_then(|text| parse_part(part, &text)) {
                    Ok(t) => {
                        parts.insert((template, part), t);
                        overridden.push(name);
                    }
                    Err(e) => problems.push(format!("{}: {e}", path.display())),
                }
            }
        }
        overridden.sort();
        if problems.is_empty() {
            Ok(Self { parts, overridden })
        } else {
            Err(problems)
        }
    }

    /// The files of the folder that replaced built-in parts, sorted.
    pub fn overridden(&self) -> &[String] {
        &self.overridden
    }

    /// The template's three parts with `values` filled in: the subject on one line, the HTML
    /// with each value escaped.
    pub fn render(&self, template: MailTemplate, values: &Values) -> Rendered {
        let part = |part: Part, escape: fn(&str, &mut String)| {
            self.parts
                .get(&(template, part))
                .map(|t| t.render(values, escape))
                .unwrap_or_default()
        };
        let subject = part(Part::Subject, push_one_line);
        Rendered {
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: part(Part::Text, push_plain),
            html: part(Part::Html, push_html_escaped),
        }
    }
}

/// The template and part a file of the folder replaces, by its name.
fn file_part(name: &str) -> Option<(MailTemplate, Part)> {
    // `.subject.txt` first: `.txt` is its suffix too.
    [Part::Subject, Part::Text, Part::Html]
        .into_iter()
        .find_map(|part| {
            let template = MailTemplate::parse(name.strip_suffix(part.suffix())?)?;
            Some((template, part))
        })
}

fn read_file(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("is not a file".to_owned());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("is larger than {MAX_FILE_BYTES} bytes"));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "is not UTF-8".to_owned())
}

fn push_plain(value: &str, out: &mut String) {
    out.push_str(value);
}

/// A value in the subject: control characters (CR and LF among them) become spaces.
fn push_one_line(value: &str, out: &mut String) {
    out.extend(value.chars().map(|c| if c.is_control() { ' ' } else { c }));
}

/// A value in HTML text or a quoted attribute.
pub fn push_html_escaped(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
#[path = "templates_tests.rs"]
mod tests;
