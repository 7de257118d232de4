//! Home migration: a page whose home is one node while another node keeps
//! writing it moves its home to that writer.
//!
//! The common case is data one node initialises for all (serially, before
//! the parallel part) that each node then updates in its own part,
//! iteration after iteration: under first-touch it lives on the
//! initialising node, so every write goes back there at every release, and
//! the home's own notices for it (it cannot tell a write it served from
//! one of its own) make the writer drop its copy after every barrier.
//!
//! Decisions are taken at gathering barriers (`SharedRegion::barrier`),
//! where every node is inside the barrier and every node receives what
//! every other node contributed, so all of them take the same decisions
//! from the same data, with no extra message:
//!
//! - each node counts, per page of another home it writes, the intervals
//!   (between gathering barriers) in which it wrote the page, starting
//!   again whenever a third node (neither it nor the home) wrote it;
//! - at `threshold` such intervals (it doubles with every move the page
//!   has made, and a page stops moving after `MAX_MOVES`, or as soon as
//!   it goes back to the node it last left, so a page two nodes take
//!   turns writing does not bounce: the home's notices cannot tell its own
//!   writes from the ones it served, so each of the two sees itself as the
//!   only writer besides the home) the node
//!   contributes, after its write notices, a *proposal* for the page;
//! - a proposal of node B for page p homed at H is accepted when B is the
//!   only node proposing p and no node but B and H logged a write to p in
//!   the interval;
//! - then every node applies every accepted move (region/migration.rs
//!   `apply_moves`): every cached copy of the page is dropped (the old
//!   home's once B has read it), B reads the page from H and installs it
//!   as its home page, everybody records B as the home (node 0 in the
//!   first-touch directory too), and a second barrier makes sure nobody
//!   asks B for the page before B has it. No node caches the page after
//!   the move, so B's writes need no notice until another node reads it
//!   (which exports it, as for any home page).
//!
//! Only first-touch pages move (their homes are looked up, not computed),
//! and only with write notices (the tcp transport).

use loco_rdma::NodeId;

/// A page changing homes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub page: u32,
    pub from: NodeId,
    pub to: NodeId,
}

/// Moves a page may make before it stays where it is.
pub const MAX_MOVES: u8 = 6;

/// Consecutive intervals a node must have written a page of another home
/// before it asks for it, given the moves the page has made already.
pub fn threshold(moves: u8) -> u64 {
    2u64 << moves.min(MAX_MOVES)
}

/// Appends proposals (page, its current home) to a barrier contribution.
pub fn encode(proposals: &[(u32, NodeId)], out: &mut Vec<u8>) {
    out.extend_from_slice(&(proposals.len() as u64).to_le_bytes());
    for &(page, home) in proposals {
        out.extend_from_slice(&page.to_le_bytes());
        out.extend_from_slice(&(home as u32).to_le_bytes());
    }
}

/// The proposals in `rest`, the part of a contribution after its write
/// notices; `None` if it holds none (or is cut short).
pub fn decode(rest: &[u8]) -> Option<Vec<(u32, NodeId)>> {
    let n = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?) as usize;
    let body = rest.get(8..8 + n.checked_mul(8)?)?;
    Some(
        body.chunks_exact(8)
            .map(|c| {
                let page = u32::from_le_bytes(c[..4].try_into().unwrap());
                let home = u32::from_le_bytes(c[4..].try_into().unwrap()) as NodeId;
                (page, home)
            })
            .collect(),
    )
}

/// The bytes `encode` wrote at the start of `rest` (all of it if cut short).
pub fn encoded_len(rest: &[u8]) -> usize {
    rest.get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
        .and_then(|n| n.checked_mul(8))
        .and_then(|n| n.checked_add(8))
        .map_or(rest.len(), |n| n.min(rest.len()))
}

/// The accepted moves, by page. `written[n]` is every page node `n` logged
/// in the interval, `proposals[n]` what it asked for.
pub fn decide(written: &[Vec<u32>], proposals: &[Vec<(u32, NodeId)>]) -> Vec<Move> {
    let mut asked: Vec<(u32, NodeId, NodeId)> = proposals
        .iter()
        .enumerate()
        .flat_map(|(node, ps)| ps.iter().map(move |&(page, home)| (page, home, node)))
        .filter(|&(_, home, node)| home != node && home < written.len())
        .collect();
    asked.sort_unstable();
    let mut sorted: Vec<Vec<u32>> = written.to_vec();
    for w in &mut sorted {
        w.sort_unstable();
        w.dedup();
    }
    let mut moves = Vec::new();
    let mut k = 0;
    while k < asked.len() {
        let (page, home, to) = asked[k];
        let same = asked[k..].iter().take_while(|a| a.0 == page).count();
        k += same;
        if same > 1 {
            continue;
        }
        let others_wrote = sorted
            .iter()
            .enumerate()
            .any(|(n, w)| n != to && n != home && w.binary_search(&page).is_ok());
        if !others_wrote {
            moves.push(Move {
                page,
                from: home,
                to,
            });
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposals_round_trip_after_the_notices() {
        let mut out = vec![1, 2, 3];
        encode(&[(7, 0), (9, 2)], &mut out);
        assert_eq!(decode(&out[3..]), Some(vec![(7, 0), (9, 2)]));
        assert_eq!(encoded_len(&out[3..]), out.len() - 3);
        assert_eq!(decode(&out[3..out.len() - 1]), None);
        assert_eq!(decode(&[]), None);
        // Bytes after them (a barrier's extra) are not theirs.
        out.extend_from_slice(b"tail");
        assert_eq!(encoded_len(&out[3..]), out.len() - 3 - 4);
        assert_eq!(decode(&out[3..]), Some(vec![(7, 0), (9, 2)]));
    }

    #[test]
    fn a_sole_writer_besides_the_home_gets_the_page() {
        // Node 1 wrote 5 (homed at 0, which also logged it: it served the
        // writes); node 2 wrote 6, which node 1 also wrote.
        let written = vec![vec![5], vec![5, 6], vec![6]];
        let proposals = vec![vec![], vec![(5, 0), (6, 0)], vec![]];
        assert_eq!(
            decide(&written, &proposals),
            vec![Move {
                page: 5,
                from: 0,
                to: 1
            }]
        );
    }

    #[test]
    fn two_nodes_asking_for_one_page_get_nothing() {
        let written = vec![vec![], vec![3], vec![3]];
        let proposals = vec![vec![], vec![(3, 0)], vec![(3, 0)]];
        assert!(decide(&written, &proposals).is_empty());
    }

    #[test]
    fn a_node_never_takes_its_own_page_and_homes_must_exist() {
        let written = vec![vec![1], vec![1]];
        assert!(decide(&written, &[vec![(1, 0)], vec![(1, 7)]]).is_empty());
    }

    #[test]
    fn the_threshold_doubles_with_every_move_up_to_a_limit() {
        assert_eq!(threshold(0), 2);
        assert_eq!(threshold(1), 4);
        assert_eq!(threshold(MAX_MOVES), threshold(MAX_MOVES + 3));
    }
}
