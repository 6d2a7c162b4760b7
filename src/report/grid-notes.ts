/** How often the probes' chosen lr and wd lie at the edges of their grids, and by how much they won there. */
import { isProbeDetails } from '../eval/details.js';
import type { EvalResult } from '../eval/result.js';

type GridAxis = 'lr' | 'wd';

interface EdgePick {
  /** Which result and probe: "task model probe". */
  label: string;
  low: boolean;
  high: boolean;
  /** Held-out accuracy of the chosen point minus that of its neighbour along the axis (the other coordinate fixed). */
  margin?: number;
  tolerance: number;
}

/**
 * Where each probe's chosen point lies along one axis of its lr x wd grid, and its margin over the
 * next value on that axis at the same other coordinate, in the round that selected (else the
 * grid's first round: successive halving keeps few points), against the convergence tolerance
 * (max(0.3 points, one held-out SE)).
 */
function gridEdgePicks(results: EvalResult[], axis: GridAxis): EdgePick[] {
  const other: GridAxis = axis === 'lr' ? 'wd' : 'lr';
  const picks: EdgePick[] = [];
  for (const r of results) {
    // Every probe's details, under today's classifier names and those of older results.
    for (const [probe, d] of Object.entries(r.details)) {
      if (!isProbeDetails(d)) continue;
      const values = [...new Set((d.coarse?.grid ?? d.grid).map((g) => g[axis]))].sort((a, b) => a - b);
      if (values.length < 2) continue;
      const chosen = d.grid[d.best];
      const next = values[values.indexOf(chosen[axis]) + (chosen[axis] === values.at(-1) ? -1 : 1)];
      const at = (grid: { lr: number; wd: number }[], acc: number[], v: number) => {
        const i = grid.findIndex((g) => g[other] === chosen[other] && g[axis] === v);
        return i < 0 ? undefined : acc[i];
      };
      const round =
        at(d.grid, d.valAccuracy, next) !== undefined
          ? { grid: d.grid, acc: d.valAccuracy }
          : d.coarse && { grid: d.coarse.grid, acc: d.coarse.valAccuracy };
      const margin = round && at(round.grid, round.acc, chosen[axis])! - (at(round.grid, round.acc, next) ?? Number.NaN);
      picks.push({
        label: `${r.task} ${r.model} ${probe}`,
        low: chosen[axis] === values[0],
        high: chosen[axis] === values.at(-1),
        margin: Number.isFinite(margin) ? margin : undefined,
        tolerance: d.plateauTolerance,
      });
    }
  }
  return picks;
}

/** "at an edge in n of m (the smallest in k); there it beat the next ... by x-y points (tolerance ...), ..." */
function edgeSentence(picks: EdgePick[], axis: GridAxis, gridName: string, outside: string): string {
  const edge = picks.filter((p) => p.low || p.high);
  const margins = edge.filter((p) => p.margin !== undefined);
  const pts = (x: number) => (100 * x).toFixed(2);
  const range = (xs: number[]) => (Math.min(...xs) === Math.max(...xs) ? pts(xs[0]) : `${pts(Math.min(...xs))}-${pts(Math.max(...xs))}`);
  // Named, so that a reader can find the results a wider grid might change.
  const beyond = margins.filter((p) => p.margin! > p.tolerance).map((p) => `${p.label} by ${pts(p.margin!)}`);
  const detail = margins.length
    ? `; there it beat the next ${axis} at the same ${axis === 'lr' ? 'wd' : 'lr'} by ${range(margins.map((p) => p.margin!))} held-out points (tolerance ${range(margins.map((p) => p.tolerance))}), ${beyond.length ? `beyond the tolerance in ${beyond.length} (${beyond.join('; ')}): ${outside}` : 'never beyond the tolerance: the edge is within noise'}`
    : '';
  const extreme =
    axis === 'lr' ? `the largest in ${edge.filter((p) => p.high).length}` : `the smallest in ${edge.filter((p) => p.low).length}`;
  return `the chosen ${axis} lies at an edge of ${gridName} in ${edge.length} of ${picks.length} probe results (${extreme})${detail}`;
}

/**
 * What the grid edges cost: the tables flag an lr at its grid edge (†), not a wd; these say how
 * often each edge won and by how much it beat its neighbour, so a reader can tell an edge within
 * noise from one that may hide a better point outside the grid.
 */
export function gridEdgeNotes(results: EvalResult[]): string {
  const lr = gridEdgePicks(results, 'lr');
  const wd = gridEdgePicks(results, 'wd');
  if (!lr.length) return '';
  return [
    `Learning rate (flagged † in the tables): ${edgeSentence(lr, 'lr', 'its lr grid', 'an lr outside the grid might do better there')}.`,
    `Weight decay (not flagged in the tables): ${edgeSentence(wd, 'wd', "the paper's wd grid", 'a wd outside the grid might do better there')}.`,
  ].join('\n');
}
