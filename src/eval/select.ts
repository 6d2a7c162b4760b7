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

/**
 * `atEdge` says whether a point lies on the edge of its grid; the default treats the grid as one
 * ordered axis (first or last point). Grids with a categorical axis pass their own.
 */
export async function selectRefitTest<P, R>(
  grid: readonly P[],
  validationScores: (grid: readonly P[]) => Promise<number[]> | number[],
  refitAndTest: (best: P) => Promise<R> | R,
  atEdge: (best: P, index: number, grid: readonly P[]) => boolean = (_, i, g) => g.length > 1 && (i === 0 || i === g.length - 1),
): Promise<Selection<P, R>> {
  if (!grid.length) throw new Error('selectRefitTest: empty grid');
  const scores = await validationScores(grid);
  if (scores.length !== grid.length) throw new Error(`selectRefitTest: ${scores.length} scores for ${grid.length} grid points`);
  const bestIndex = argmaxFirst(scores);
  const best = grid[bestIndex];
  return {
    validation: grid.map((point, i) => ({ point, score: scores[i] })),
    best,
    bestIndex,
    atGridEdge: atEdge(best, bestIndex, grid),
    test: await refitAndTest(best),
  };
}
