//! DNS records of the environment's zone: as declared and as the zone
//! holds them, and the one canonical form both are compared in.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// The record types flareops manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DnsRecordType {
    A,
    AAAA,
    CNAME,
    TXT,
    MX,
    SRV,
    CAA,
}

impl DnsRecordType {
    pub const ALL: [DnsRecordType; 7] = [
        DnsRecordType::A,
        DnsRecordType::AAAA,
        DnsRecordType::CNAME,
        DnsRecordType::TXT,
        DnsRecordType::MX,
        DnsRecordType::SRV,
        DnsRecordType::CAA,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DnsRecordType::A => "A",
            DnsRecordType::AAAA => "AAAA",
            DnsRecordType::CNAME => "CNAME",
            DnsRecordType::TXT => "TXT",
            DnsRecordType::MX => "MX",
            DnsRecordType::SRV => "SRV",
            DnsRecordType::CAA => "CAA",
        }
    }

    pub fn parse(text: &str) -> Option<DnsRecordType> {
        DnsRecordType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// Whether Cloudflare can proxy records of this type.
    pub fn proxiable(self) -> bool {
        matches!(
            self,
            DnsRecordType::A | DnsRecordType::AAAA | DnsRecordType::CNAME
        )
    }

    /// Whether records of this type carry a priority.
    pub fn has_priority(self) -> bool {
        matches!(self, DnsRecordType::MX | DnsRecordType::SRV)
    }
}

impl fmt::Display for DnsRecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A DNS record as declared (`dns_records.<key>`), in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecordSpec {
    #[serde(rename = "type")]
    pub record_type: DnsRecordType,
    /// Fully qualified, lowercase.
    pub name: String,
    /// In [`canonical_content`] form.
    pub content: String,
    pub proxied: bool,
    /// Seconds; 1 is automatic (and what a proxied record always has).
    pub ttl: u32,
    /// MX and SRV.
    pub priority: Option<u16>,
    pub comment: Option<String>,
    /// `name:value`, sorted.
    pub tags: Vec<String>,
}

/// A DNS record as the zone holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LiveDnsRecord {
    pub id: String,
    /// As the API names it (types flareops does not manage included).
    pub record_type: String,
    pub name: String,
    pub content: String,
    pub proxied: bool,
    pub ttl: u32,
    pub priority: Option<u16>,
    pub comment: Option<String>,
    /// Sorted (as the client reads them).
    pub tags: Vec<String>,
    /// Made and owned by Cloudflare (a Worker custom domain's record):
    /// shown, never changed.
    pub managed: bool,
}

impl LiveDnsRecord {
    /// The declared type this record has, when flareops manages the type.
    pub fn kind(&self) -> Option<DnsRecordType> {
        DnsRecordType::parse(&self.record_type)
    }

    /// Whether the record carries what `spec` declares in its identity:
    /// type, name and (canonical) content.
    pub fn same_identity(&self, spec: &DnsRecordSpec) -> bool {
        self.kind() == Some(spec.record_type)
            && self.name == spec.name
            && canonical_content(spec.record_type, &self.content).as_deref()
                == Some(spec.content.as_str())
    }

    /// Whether the record is exactly what `spec` declares.
    pub fn matches(&self, spec: &DnsRecordSpec) -> bool {
        self.same_identity(spec)
            && self.proxied == spec.proxied
            && (spec.proxied || self.ttl == spec.ttl)
            && self.priority == spec.priority
            && self.comment == spec.comment
            && self.tags == spec.tags
    }
}

/// The fully qualified, lowercase form of a record name in `zone`: `@` is
/// the apex, a name outside the zone gets the zone appended (as Cloudflare
/// does).
pub fn qualify_name(name: &str, zone: &str) -> String {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if name == "@" || name.is_empty() {
        zone.to_string()
    } else if name == zone || name.ends_with(&format!(".{zone}")) {
        name
    } else {
        format!("{name}.{zone}")
    }
}

/// Content in the one form declared and live records are compared in, or
/// `None` when it is not valid for the type: addresses in their standard
/// text form, host names lowercase without the final dot, SRV as `weight
/// port target`, CAA as `flags tag "value"`, TXT as written.
pub fn canonical_content(kind: DnsRecordType, content: &str) -> Option<String> {
    let host = |text: &str| {
        let host = text.trim().trim_end_matches('.').to_ascii_lowercase();
        let ok = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        ok.then_some(host)
    };
    match kind {
        DnsRecordType::A => content
            .trim()
            .parse::<Ipv4Addr>()
            .ok()
            .map(|ip| ip.to_string()),
        DnsRecordType::AAAA => content
            .trim()
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| ip.to_string()),
        DnsRecordType::CNAME | DnsRecordType::MX => host(content),
        DnsRecordType::TXT => {
            (!content.is_empty() && content.len() <= 2048).then(|| content.to_string())
        }
        DnsRecordType::SRV => {
            let parts: Vec<&str> = content.split_whitespace().collect();
            let [weight, port, target] = parts.as_slice() else {
                return None;
            };
            let weight = weight.parse::<u16>().ok()?;
            let port = port.parse::<u16>().ok()?;
            Some(format!("{weight} {port} {}", host(target)?))
        }
        DnsRecordType::CAA => {
            let mut parts = content.trim().splitn(3, ' ');
            let flags = parts.next()?.parse::<u8>().ok()?;
            let tag = parts.next()?.to_ascii_lowercase();
            if !matches!(tag.as_str(), "issue" | "issuewild" | "iodef") {
                return None;
            }
            let value = parts.next()?.trim().trim_matches('"');
            Some(format!("{flags} {tag} \"{value}\""))
        }
    }
}

/// What a Worker custom domain's record points at (`AAAA 100::`).
pub const WORKER_RECORD_CONTENT: &str = "100::";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_qualified_in_the_zone() {
        assert_eq!(qualify_name("@", "example.com"), "example.com");
        assert_eq!(qualify_name("WWW", "example.com"), "www.example.com");
        assert_eq!(
            qualify_name("api.example.com.", "example.com"),
            "api.example.com"
        );
        assert_eq!(
            qualify_name("notexample.com", "example.com"),
            "notexample.com.example.com"
        );
    }

    #[test]
    fn content_is_compared_in_one_form() {
        use DnsRecordType::*;
        assert_eq!(
            canonical_content(AAAA, "100:0::0").as_deref(),
            Some("100::")
        );
        assert_eq!(canonical_content(A, "192.0.2.300"), None);
        assert_eq!(
            canonical_content(CNAME, "Target.Example.com.").as_deref(),
            Some("target.example.com")
        );
        assert_eq!(
            canonical_content(SRV, "5  5060 sip.example.com.").as_deref(),
            Some("5 5060 sip.example.com")
        );
        assert_eq!(
            canonical_content(CAA, "0 issue letsencrypt.org").as_deref(),
            Some("0 issue \"letsencrypt.org\"")
        );
        assert_eq!(canonical_content(CAA, "0 issues \"x\""), None);
        assert_eq!(
            canonical_content(TXT, "v=spf1 -all").as_deref(),
            Some("v=spf1 -all")
        );
    }
}
