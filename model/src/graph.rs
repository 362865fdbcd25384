//! Orders resources by their dependency edges, keeping declaration order
//! where nothing constrains it, and names the cycle when there is one.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Topologically sorts nodes `0..n` given edges `(before, after)`.
///
/// On success returns the order. On a cycle returns the nodes of one cycle, in
/// order, with the first node repeated at the end.
pub fn toposort(n: usize, edges: &[(usize, usize)]) -> Result<Vec<usize>, Vec<usize>> {
    let mut succ = vec![Vec::new(); n];
    let mut indeg = vec![0usize; n];
    for &(a, b) in edges {
        succ[a].push(b);
        indeg[b] += 1;
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..n).filter(|&i| indeg[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &j in &succ[i] {
            indeg[j] -= 1;
            if indeg[j] == 0 {
                ready.push(Reverse(j));
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    Err(find_cycle(&succ, &indeg))
}

/// Finds one cycle among the nodes Kahn's algorithm could not place.
fn find_cycle(succ: &[Vec<usize>], indeg: &[usize]) -> Vec<usize> {
    let n = succ.len();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut color = vec![0u8; n];
    for start in (0..n).filter(|&i| indeg[i] > 0) {
        if color[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        color[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&m) = succ[node].get(*next) {
                *next += 1;
                if indeg[m] == 0 {
                    continue;
                }
                match color[m] {
                    0 => {
                        color[m] = 1;
                        stack.push((m, 0));
                    }
                    1 => {
                        let pos = stack.iter().position(|(x, _)| *x == m).unwrap_or(0);
                        let mut cycle: Vec<usize> = stack[pos..].iter().map(|(x, _)| *x).collect();
                        cycle.push(m);
                        return cycle;
                    }
                    _ => {}
                }
            } else {
                color[node] = 2;
                stack.pop();
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_declaration_order_when_free() {
        assert_eq!(toposort(4, &[(3, 0)]).unwrap(), vec![1, 2, 3, 0]);
    }

    #[test]
    fn names_the_cycle() {
        let c = toposort(4, &[(0, 1), (1, 2), (2, 1), (2, 3)]).unwrap_err();
        assert_eq!(c, vec![1, 2, 1]);
    }
}
