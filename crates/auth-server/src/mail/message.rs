//! A rendered mail as an RFC 5322 message: multipart/alternative (text, then HTML) with
//! `Message-ID`, `Date`, `From`, `To` and `Subject`.

use auth_core::outbox::DeliveryError;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use super::Rendered;

/// The message of one mail; `id` (the outbox entry's) makes its `Message-ID`. A recipient
/// that is not an address can never be sent to: permanent.
pub fn build(
    id: &str,
    from: &Mailbox,
    to: &str,
    rendered: &Rendered,
) -> Result<Message, DeliveryError> {
    let to: Mailbox = to
        .trim()
        .parse()
        .map_err(|e| DeliveryError::Permanent(format!("the recipient is not an address: {e}")))?;
    Message::builder()
        .message_id(Some(message_id(id, from)))
        .date_now()
        .from(from.clone())
        .to(to)
        .subject(rendered.subject.as_str())
        .multipart(MultiPart::alternative_plain_html(
            rendered.text.clone(),
            rendered.html.clone(),
        ))
        .map_err(|e| DeliveryError::Permanent(format!("cannot build the message: {e}")))
}

/// `<ID@DOMAIN>` with the sender's domain: the same for every attempt at one entry.
fn message_id(id: &str, from: &Mailbox) -> String {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .collect();
    format!("<{id}@{}>", from.email.domain())
}
