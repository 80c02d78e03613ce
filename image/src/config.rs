//! Image-configuration helpers. For now only layer **ChainIDs**.
//!
//! The OCI image spec (`config.md`, "Layer ChainID") names the filesystem that results from
//! applying a stack of layers:
//!
//! ```text
//! ChainID(L0)         = DiffID(L0)
//! ChainID(L0|...|Ln)  = SHA256(ChainID(L0|...|Ln-1) + " " + DiffID(Ln))
//! ```
//!
//! where both operands are in their `sha256:<hex>` string form. dray keys unpacked base-image
//! snapshots by ChainID (architecture B4), so images that share a layer prefix share snapshots.

use sha2::{Digest as _, Sha256};

use crate::Digest;

/// The ChainID of the whole stack `diff_ids` (bottom layer first), or `None` for no layers.
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    chain_ids(diff_ids).pop()
}

/// The ChainID of every prefix of `diff_ids`: element `i` names the filesystem of layers
/// `0..=i`. This is what an unpacker walks to find the longest prefix it already has.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => *diff_id,
            Some(parent) => {
                let mut h = Sha256::new();
                h.update(parent.to_string().as_bytes());
                h.update(b" ");
                h.update(diff_id.to_string().as_bytes());
                Digest::from_bytes(h.finalize().into())
            }
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        s.parse().unwrap()
    }

    // Vectors computed independently with coreutils:
    //   a=sha256:$(printf a | sha256sum | cut -d' ' -f1)            (likewise b, c)
    //   ab=sha256:$(printf '%s %s' $a $b | sha256sum | cut -d' ' -f1)
    //   abc=sha256:$(printf '%s %s' $ab $c | sha256sum | cut -d' ' -f1)
    const A: &str = "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
    const B: &str = "sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";
    const C: &str = "sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6";
    const AB: &str = "sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676";
    const ABC: &str = "sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106";

    #[test]
    fn empty_stack_has_no_chain_id() {
        assert_eq!(chain_id(&[]), None);
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn single_layer_chain_id_is_its_diff_id() {
        assert_eq!(chain_id(&[d(A)]), Some(d(A)));
    }

    #[test]
    fn chain_ids_match_independently_computed_vectors() {
        assert_eq!(chain_ids(&[d(A), d(B), d(C)]), vec![d(A), d(AB), d(ABC)]);
        assert_eq!(chain_id(&[d(A), d(B)]), Some(d(AB)));
    }

    #[test]
    fn order_matters() {
        assert_ne!(chain_id(&[d(A), d(B)]), chain_id(&[d(B), d(A)]));
    }
}
