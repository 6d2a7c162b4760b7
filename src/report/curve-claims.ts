/**
 * The claims along a learning curve: a plan that evaluates its runs at a few points of their
 * training (`<run>@<n>ep` rows) gets every claim at each point beside its value at the end, so a
 * reader sees where a claim moves with training length.
 */
import { buildClaims, type Claim, flagEvidence, fmtGap } from './claims.js';
import type { Verdict } from './statistics.js';
import { curvePoints, runEpochs, type StudyReportInput } from './study-input.js';
import type { Table } from './table.js';

/**
 * The study as it stood at `epochs`: each run's rows at that point under the names of its end rows
 * (the end rows left out), its metrics up to the point's step; the baselines and reference rows as
 * they are (they do not depend on training length).
 */
export function atPoint(input: StudyReportInput, epochs: number): StudyReportInput {
  const rowsOfRuns = new Set(input.evalSettings.map((e) => `${e.task}\0${e.row}`));
  // A point's row -> the row of the same run, weights and task at the end.
  const endRow = new Map<string, string>(
    input.evalSettings
      .filter((e) => e.atEpochs === epochs)
      .flatMap((e) => {
        const end = input.evalSettings.find(
          (x) => x.run === e.run && x.task === e.task && x.weights === e.weights && x.atEpochs === undefined,
        );
        return end ? [[`${e.task}\0${e.row}`, end.row] as [string, string]] : [];
      }),
  );
  const results = input.results.flatMap((r) => {
    const key = `${r.task}\0${r.model}`;
    const end = endRow.get(key);
    if (end !== undefined) return [{ ...r, model: end }];
    return rowsOfRuns.has(key) ? [] : [r];
  });
  const stepOf = (id: string) => {
    const row = results.find((r) => r.model === id && typeof r.config.checkpointStep === 'number');
    return row ? (row.config.checkpointStep as number) : undefined;
  };
  const runs = input.runs.map((r) => {
    const step = stepOf(r.id);
    return { ...r, metrics: step === undefined ? [] : r.metrics.filter((m) => m.step < step) };
  });
  return { ...input, runs, results };
}

const SHORT: Record<Verdict, string> = {
  holds: 'holds',
  'holds (within 2 SE)': 'holds, within 2 SE',
  'not resolved (within 2 SE)': 'not resolved',
  'does not hold (reversed beyond 2 SE)': 'reversed',
  'not testable here': 'not testable',
};

const cell = (c: Claim | undefined) => (c && c.gap !== undefined ? `${fmtGap(c)} (${SHORT[c.verdict]})` : '-');

/** Every claim at each learning-curve point (the plan's evaluation points with results), by claim. */
export interface CurveClaims {
  points: number[];
  byPoint: Map<string, Claim>[];
}

/** The claims at each learning-curve point; undefined without a curve. */
export function claimsAlongCurve(input: StudyReportInput): CurveClaims | undefined {
  const points = curvePoints(input);
  if (!points.length) return undefined;
  return { points, byPoint: points.map((p) => new Map(buildClaims(atPoint(input, p)).map((c) => [c.claim, c]))) };
}

/** Every claim's gap and verdict at each learning-curve point and at the end; undefined without a curve. */
export function curveClaimsTable(input: StudyReportInput, atEnd: Claim[], curve = claimsAlongCurve(input)): Table | undefined {
  if (!curve) return undefined;
  const end = new Map(atEnd.map((c) => [c.claim, c]));
  // Every claim made at some point, in the end's order, then those made only before it.
  const names = [...new Set([...end.keys(), ...curve.byPoint.flatMap((m) => [...m.keys()])])];
  const endEpochs = runEpochs(input);
  return {
    name: 'claims-curve',
    title: 'Claims along the learning curve: gap A - B ± combined SE (verdict) at each point',
    header: ['claim', ...curve.points.map((p) => `${p} epochs`), endEpochs === undefined ? 'end' : `end (${endEpochs} epochs)`],
    rows: names.map((n) => [n, ...curve.byPoint.map((m) => cell(m.get(n))), cell(end.get(n))]),
    note: 'A point\'s claims use the runs\' rows at that point (teacher and student) against the same baselines; "-" where a side was not evaluated there (the attentive probe runs at the end only).',
  };
}

const holds = (c: Claim) => c.verdict === 'holds' || c.verdict === 'holds (within 2 SE)';

/**
 * The discussion's lines for the learning curve: each claim that does not hold at some point before
 * the end, with its verdict, gap and the two rows' selection flags at each such point ('' when every
 * one holds at every point).
 */
export function curveDiscussion(curve: CurveClaims | undefined): string {
  if (!curve) return '';
  const names = [...new Set(curve.byPoint.flatMap((m) => [...m.keys()]))];
  const lines = names.flatMap((n) => {
    const open = curve.points.flatMap((p, i) => {
      const c = curve.byPoint[i].get(n);
      return c && c.gap !== undefined && !holds(c) ? [`${SHORT[c.verdict]} at ${p} epochs (${fmtGap(c)}${flagEvidence(c)})`] : [];
    });
    return open.length ? [`- Along the learning curve, **${n}**: ${open.join(', ')}.`] : [];
  });
  return lines.length ? `${lines.join('\n')}\n` : '';
}
