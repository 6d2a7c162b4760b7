/** select -> refit -> test: the winner is the grid's own object (first on ties), with its edge flag; the dense k-NN's edge rule. */
import { describe, expect, it } from 'vitest';
import { knnAtGridEdge } from '../../src/eval/classifiers.js';
import { selectRefitTest } from '../../src/eval/select.js';
import { SEG_KNN_KS, segKnnGrid } from '../../src/segmentation/protocol.js';

describe('selectRefitTest', () => {
  it('refits exactly the winning grid point, first on ties; edges of an ordered grid', async () => {
    const grid = [1e-6, 1e-3, 1, 1e3];
    const refits: number[] = [];
    const sel = await selectRefitTest(
      grid,
      () => [0.1, 0.5, 0.5, 0.2],
      (c) => {
        refits.push(c);
        return c * 2;
      },
    );
    expect(sel.best).toBe(grid[1]);
    expect(refits).toEqual([grid[1]]);
    expect(sel.test).toBe(2e-3);
    expect(sel.atGridEdge).toBe(false);
    expect(
      (
        await selectRefitTest(
          grid,
          () => [0, 0, 0, 1],
          (c) => c,
        )
      ).atGridEdge,
    ).toBe(true);
  });

  it('a grid with a categorical axis judges edges on its ordered axis only', async () => {
    const grid = [1, 30].flatMap((k) => ['cosine', 'l2'].map((metric) => ({ k, metric })));
    const kEdge = (p: { k: number }) => p.k === 1 || p.k === 30;
    // Index 1 is inside the flattened grid, but k = 1 is the edge of the k range.
    const sel = await selectRefitTest(
      grid,
      () => [0, 1, 0, 0],
      (p) => p,
      kEdge,
    );
    expect(sel.best).toBe(grid[1]);
    expect(sel.atGridEdge).toBe(true);
  });
});

describe('knnAtGridEdge', () => {
  it('flags the largest k of the grid, not k = 1 (nothing smaller exists) nor an inner k', async () => {
    const grid = segKnnGrid();
    const at = (k: number) => knnAtGridEdge({ k, metric: 'l2' }, 0, grid);
    expect(at(Math.max(...SEG_KNN_KS))).toBe(true);
    expect(at(1)).toBe(false);
    expect(at(SEG_KNN_KS[1])).toBe(false);
  });
});
