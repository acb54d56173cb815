//! Property tests for the PRELOGIN answer from whatever listens on a SQL port: arbitrary
//! bytes never panic, a well-formed answer parses to what was written, a cut one is an
//! error (the other parsers: `parsers.rs`).

use super::parsers::cases;
use proptest::prelude::*;
use routeproof::probe::tds::wire::parse_prelogin;

/// A PRELOGIN option table with the given options, then their data (MS-TDS 2.2.6.5).
fn prelogin(options: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut table = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    let base = options.len() * 5 + 1;
    for (token, value) in options {
        table.push(*token);
        table.extend(((base + data.len()) as u16).to_be_bytes());
        table.extend((value.len() as u16).to_be_bytes());
        data.extend(value);
    }
    table.push(0xff);
    table.extend(data);
    table
}

/// The option table of a PRELOGIN message as (token, offset, length), read the way
/// MS-TDS 2.2.6.5 lays it out; `None` when no 0xff terminator ends it inside `bytes`
/// within 32 entries (the bound the parser also keeps).
fn option_table(bytes: &[u8]) -> Option<Vec<(u8, usize, usize)>> {
    let mut entries = Vec::new();
    let mut i = 0;
    while entries.len() <= 32 {
        match bytes.get(i)? {
            0xff => return Some(entries),
            t => {
                let e = bytes.get(i + 1..i + 5)?;
                entries.push((
                    *t,
                    u16::from_be_bytes([e[0], e[1]]) as usize,
                    u16::from_be_bytes([e[2], e[3]]) as usize,
                ));
                i += 5;
            }
        }
    }
    None
}

/// Mostly well-formed PRELOGIN messages, so the accepting branch is exercised too.
fn prelogin_like() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((0u8..8, prop::collection::vec(any::<u8>(), 0..8)), 0..6)
        .prop_map(|opts| prelogin(&opts))
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn prelogin_parser_never_panics(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            prelogin_like(),
        ],
    ) {
        match parse_prelogin(&bytes) {
            Ok(reply) => {
                // Walked independently: the option table ends with 0xff inside the bytes,
                // holds no more entries than the bytes have room for, and every value the
                // reply claims comes from an entry whose data lies inside the buffer.
                let entries = option_table(&bytes);
                prop_assert!(entries.is_some(), "accepted without a terminated table: {:?}", bytes);
                let entries = entries.unwrap();
                prop_assert!(entries.len() * 5 < bytes.len(), "{} options in {} bytes", entries.len(), bytes.len());
                prop_assert!(
                    entries.iter().all(|(_, off, len)| off + len <= bytes.len()),
                    "an accepted option points outside the message: {:?}", entries
                );
                let value = |token: u8, min: usize| {
                    entries
                        .iter()
                        .filter(move |(t, _, len)| *t == token && *len >= min)
                        .map(|(_, off, len)| &bytes[*off..off + len])
                };
                if let Some(v) = &reply.version {
                    prop_assert!(
                        value(0x00, 4).any(|d| *v == format!("{}.{}.{}", d[0], d[1], u16::from_be_bytes([d[2], d[3]]))),
                        "version {} from no VERSION option in {:?}", v, bytes
                    );
                }
                if let Some(e) = reply.encryption {
                    prop_assert!(value(0x01, 1).any(|d| d[0] == e), "encryption {} from nowhere", e);
                }
                if let Some(f) = reply.fedauth_required {
                    prop_assert!(value(0x06, 1).any(|d| (d[0] != 0) == f), "fedauth {} from nowhere", f);
                }
            }
            Err(e) => prop_assert!(e.starts_with("PRELOGIN"), "{}", e),
        }
    }

    #[test]
    fn prelogin_reply_round_trips(
        major in any::<u8>(), minor in any::<u8>(), build in any::<u16>(),
        enc in 0u8..4, fedauth in any::<bool>(),
        extra in prop::collection::vec((2u8..6, prop::collection::vec(any::<u8>(), 0..8)), 0..4),
        shuffle in any::<bool>(),
    ) {
        let mut opts = vec![
            (0x00, vec![major, minor, (build >> 8) as u8, build as u8, 0, 0]),
            (0x01, vec![enc]),
            (0x06, vec![fedauth as u8]),
        ];
        opts.extend(extra);
        if shuffle {
            opts.reverse();
        }
        let r = parse_prelogin(&prelogin(&opts)).unwrap();
        prop_assert_eq!(r.version, Some(format!("{major}.{minor}.{build}")));
        prop_assert_eq!(r.encryption, Some(enc));
        prop_assert_eq!(r.fedauth_required, Some(fedauth));
    }

    #[test]
    fn truncated_prelogin_is_an_error_not_a_panic(cut in 0usize..30) {
        let full = prelogin(&[(0x00, vec![16, 0, 3, 232, 0, 0]), (0x01, vec![3])]);
        let cut = cut.min(full.len().saturating_sub(1));
        // Cut inside the table: an error. (Cut inside the data: the offsets point outside.)
        prop_assert!(parse_prelogin(&full[..cut]).is_err());
    }
}
