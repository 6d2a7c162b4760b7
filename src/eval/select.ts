/**
 * Select -> refit -> test, for every classifier with a hyper-parameter grid that refits (eval
 * spec 3.2: choose on the validation split, refit on train + validation, score on test). The
 * winning grid point is returned as the object itself, never a string to parse back.
 */
import { argmaxFirst } from '../probes/grid.js';

export interface Selection<P, R> {
  /** Validation score of every grid point, in grid order. */
  validation: { point: P; score: number }[];
  best: P;
  bestIndex: number;
  /** Whether the winner sits on the first or last point of the grid (not inside it). */
  atGridEdge: boolean;
  test: R;
}

export function selectRefitTest<P, R>(
  grid: readonly P[],
  validationScores: (grid: readonly P[]) => number[],
  refitAndTest: (best: P) => R,
): Selection<P, R> {
  if (!grid.length) throw new Error('selectRefitTest: empty grid');
  const scores = validationScores(grid);
  if (scores.length !== grid.length) throw new Error(`selectRefitTest: ${scores.length} scores for ${grid.length} grid points`);
  const bestIndex = argmaxFirst(scores);
  const best = grid[bestIndex];
  return {
    validation: grid.map((point, i) => ({ point, score: scores[i] })),
    best,
    bestIndex,
    atGridEdge: grid.length > 1 && (bestIndex === 0 || bestIndex === grid.length - 1),
    test: refitAndTest(best),
  };
}
