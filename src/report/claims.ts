/**
 * The paper's claims as this study can test them: CAPI against each baseline, the teacher against
 * its student, each Table 1 arm against the default, predictor against average pooling; each with
 * its gap, combined standard error, verdict and the diagnostics that bear on it.
 */
import { chosenK } from '../eval/details.js';
import type { MetricKey } from '../eval/metrics.js';
import { PAPER_TEACHERS, paperTeacherMomenta, teacherMeanAge } from '../pretrain/diagnostics.js';
import type { PredictionFit } from '../pretrain/prediction-fit.js';
import type { EvalResult } from '../eval/result.js';
import {
  aggregate,
  aggregateCell,
  gapSe,
  lateMean,
  meanFeatureShares,
  monitorTrace,
  positionMICell,
  predictorGap,
  type Aggregate,
  type Pairing,
  type Verdict,
  verdict,
  withSeedSpreadOf,
} from './statistics.js';
import {
  armResults,
  armStudentResults,
  byModel,
  familyMetrics,
  type PlanEvaluation,
  planResults,
  resultOf,
  rowMetric,
  type StudyReportInput,
} from './study-input.js';

export interface Claim {
  claim: string;
  paper: string;
  a: Aggregate | undefined;
  b: Aggregate | undefined;
  gap?: number;
  se?: number;
  /** How the gap's SE was paired (statistics.ts gapSe); absent: the two sides' SEs added as if independent. */
  paired?: Pairing;
  verdict: Verdict;
  /** Why it may not hold here: the diagnostics that bear on it. */
  evidence: string;
  /** The runs behind a comparison, by side (`default: <diagnostics>`): shared by several claims, the discussion says each once. */
  shared?: string[];
}

export function compare(
  claim: string,
  paper: string,
  kind: '>' | '>=',
  a: Aggregate | undefined,
  b: Aggregate | undefined,
  evidence: string,
  shared?: string[],
  runDiffs?: number[],
): Claim {
  const gap = a && b ? a.mean - b.mean : undefined;
  const { se, paired } = a && b ? gapSe(a, b, runDiffs) : {};
  return {
    claim,
    paper,
    a,
    b,
    gap,
    se,
    ...(paired ? { paired } : {}),
    verdict: verdict(gap, se, kind),
    evidence,
    ...(shared ? { shared } : {}),
  };
}

/** Per run, A's value minus B's: `a` and `b` hold one result per run, in the same order (same length). */
const runDifferences = (a: EvalResult[], b: EvalResult[], keyA: MetricKey, keyB = keyA): number[] | undefined =>
  a.length === b.length && a.every((r, i) => r.metrics[keyA] !== undefined && b[i].metrics[keyB] !== undefined)
    ? a.map((r, i) => r.metrics[keyA]! - b[i].metrics[keyB]!)
    : undefined;

/** The diagnostics of the runs behind `results` (a claim's own family: its task's runs). */
function diagnosticsLine(input: StudyReportInput, results: EvalResult[]): string {
  const ids = new Set(results.map((r) => r.model));
  const runs = input.runs.filter((r) => ids.has(r.id) && r.metrics.length);
  if (!runs.length) return 'no run yet';
  return runs
    .map((r) => {
      const last = r.metrics.at(-1)!;
      return (
        `${r.id}: ${r.metrics.length} steps, CAPI loss ${lateMean(r.metrics, 'capiLoss').toFixed(3)}, teacher init share ${last.teacherInitShare?.toExponential(1)}, ` +
        `position-cluster MI ${positionMICell(r.metrics, ' nats')}, ` +
        `clusters used ${lateMean(r.metrics, 'clustersUsed').toFixed(0)}, prototype cosine to init ${lateMean(r.metrics, 'prototypeCosineToInit').toFixed(2)}`
      );
    })
    .join('; ');
}

/**
 * Where the supervised ceiling (same encoder and steps, with labels) stands against baseline B: a
 * B that even the ceiling does not beat by 2 SE is out of reach of any pretraining at this scale.
 */
function ceilingEvidence(ceiling: Aggregate | undefined, b: Aggregate): string {
  if (!ceiling) return '';
  const gap = Number((ceiling.mean - b.mean).toFixed(1)); // no "-0.0"
  const { se } = gapSe(ceiling, b);
  const reach =
    gap > 2 * se
      ? `it beats B by ${gap.toFixed(1)} ± ${se.toFixed(1)}: this encoder and budget can`
      : `B is within 2 SE of it or above it (${gap >= 0 ? '+' : ''}${gap.toFixed(1)} ± ${se.toFixed(1)}): not even labels make this encoder beat B in this budget`;
  return `; the supervised ceiling (same encoder and steps, with labels) ${aggregateCell(ceiling)}, ${reach}`;
}

/**
 * What the whole-image pixel k-NN rests on: the same vector under a linear probe, and the same
 * pixels without their layout (pixel-patches: the average of its patch vectors). A k-NN far above
 * both points to near-copies (the same kind of item at a similar scale and place), not features.
 */
function pixelsKnnEvidence(input: StudyReportInput, task: string): string {
  const linear = aggregate(byModel(input, task, 'pixels'), rowMetric('pixels', 'linear(avg).top1'));
  const unplaced = aggregate(byModel(input, task, 'pixel-patches'), 'knn(avg).top1');
  if (!linear || !unplaced) return '';
  return `; B's vector (the whole image) under the linear probe: ${aggregateCell(linear)}; the same pixels without their layout (pixel-patches, average-pooled) under k-NN: ${aggregateCell(unplaced)}`;
}

/** The k-NN's chosen k of a row's seeds, e.g. `k=1` or `k=1, 3`. */
const chosenKs = (rs: EvalResult[]) =>
  [...new Set(rs.map((r) => chosenK(r.details)).filter((k) => k !== undefined))].map((k) => `k=${k}`).join(', ');

/** `0.291 ± 0.012 (n=2 of 3 seeds)`-style: the mean image share over the seeds that recorded it. */
const shareCell = (x: { image: number; n: number; imageStd: number }) =>
  `${x.image.toFixed(3)}${x.n > 1 ? ` ± ${x.imageStd.toFixed(3)}` : ''} (n=${x.n})`;

/** What bears on a dense claim: each side's feature-variance shares and, for k-NN, its chosen k. */
function denseEvidence(a: EvalResult[], b: EvalResult[], key: MetricKey): string {
  const sa = meanFeatureShares(a);
  const sb = meanFeatureShares(b);
  const shares =
    sa && sb
      ? `; share of the standardised test patch features' variance in their canvas's mean: A ${shareCell(sa)}, B ${shareCell(sb)} (in their position's mean: ${sa.position.toFixed(3)}, ${sb.position.toFixed(3)})`
      : '';
  const [ka, kb] = [chosenKs(a), chosenKs(b)];
  const k = key.startsWith('seg.knn') && ka && kb ? `; chosen k: A ${ka}, B ${kb}` : '';
  return `${shares}${k}`;
}

/**
 * A run's last measured prediction fit: `at step 7031: KL 3.31 nats against 4.49 for the
 * image-blind prediction (26% of it removed), argmax agreement 9.9% (chance 0.4%)`.
 */
export function predictionFitText(fits: Record<string, PredictionFit> | undefined): string | undefined {
  const steps = Object.keys(fits ?? {})
    .map(Number)
    .sort((a, b) => a - b);
  if (!fits || !steps.length) return undefined;
  const step = steps.at(-1)!;
  const f = fits[step];
  const removed = 100 * (1 - f.kl / f.marginalKl);
  return `at step ${step}: KL ${f.kl.toFixed(2)} nats against ${f.marginalKl.toFixed(2)} for the image-blind prediction (${removed.toFixed(0)}% of it removed), argmax agreement ${(100 * f.argmaxAgreement).toFixed(1)}% (chance ${(100 / f.clusters).toFixed(1)}%)`;
}

/** How well the predictor that predictor pooling reads was trained, in the runs of `results` ('' without a run). */
function predictorEvidence(input: StudyReportInput, results: EvalResult[]): string {
  const runs = input.runs.filter((r) => r.metrics.length && results.some((x) => x.model === r.id));
  if (!runs.length) return '';
  const parts = runs.map((r) => {
    const g = predictorGap(r.metrics);
    return `${r.id} ${g.late.toFixed(2)} nats (${g.initial.toFixed(2)} at step 0; the targets' entropy ${g.entropyInitial.toFixed(2)} -> ${g.entropyLate.toFixed(2)})`;
  });
  const fits = runs.flatMap((r) => {
    const text = predictionFitText(r.predictionFits);
    return text ? [`${r.id} ${text}`] : [];
  });
  const measured = fits.length
    ? `; measured against the best prediction that ignores the image (each patch the batch's mean target), without drop path: ${fits.join('; ')}`
    : '';
  return `its KL to its targets (CAPI loss - target entropy) over the last 10% of steps: ${parts.join(', ')} (the targets sharpen during a run, so a KL above its step-0 value does not by itself mean the predictor did not learn)${measured}`;
}

/** The paper's teachers' mean ages, computed as a run's are: `9.1k steps, 1.8% of 500k at peak 0.999; ...`. */
export function paperTeacherAges(): string {
  const ages = PAPER_TEACHERS.map(({ peak, steps }) => {
    const age = teacherMeanAge(paperTeacherMomenta(peak, steps));
    return `${(age / 1000).toFixed(1)}k steps, ${((100 * age) / steps).toFixed(1)}% of ${steps / 1000}k at peak ${peak}`;
  });
  return `the paper's teachers, computed the same way: ${ages.join('; ')}`;
}

export function buildClaims(input: StudyReportInput): Claim[] {
  const claims: Claim[] = [];
  const metrics = familyMetrics(input.results);
  /** How long the default arm's runs behind a task trained, and how its monitored run's k-NN went (what more steps would do). */
  const runLength = (task: string) => {
    const ids = new Set(armResults(input, 'capi', task).map((r) => r.model));
    const runs = input.runs.filter((x) => ids.has(x.id) && x.metrics.length);
    const r = runs[0];
    if (!r) return 'no run finished';
    const monitored = runs.find((x) => monitorTrace(x.metrics) !== '-');
    const trend = monitored ? `; ${monitored.id}'s teacher k-NN on the monitor subset at steps ${monitorTrace(monitored.metrics)}` : '';
    return `${r.metrics.length} pretraining steps here against the paper's 100k-500k${trend}`;
  };
  for (const m of metrics) {
    const capi = aggregate(armResults(input, 'capi', m.task), m.key);
    // Where this encoder and budget top out: a baseline above the supervised ceiling is out of reach of any pretraining here.
    const ceiling = aggregate(armResults(input, 'supervised', m.task), m.key);
    for (const b of ['pixels', 'init', 'random-init', 'pixel-patches']) {
      const base = aggregate(byModel(input, m.task, b), rowMetric(b, m.key));
      if (!base) continue;
      const dense = m.key.startsWith('seg.') ? denseEvidence(armResults(input, 'capi', m.task), byModel(input, m.task, b), m.key) : '';
      const layout = b === 'pixels' && m.key === 'knn(avg).top1' ? pixelsKnnEvidence(input, m.task) : '';
      claims.push(
        compare(
          `CAPI > ${b} (${m.label})`,
          'implied: SSL features beat untrained ones',
          '>',
          capi,
          base,
          `${ceilingEvidence(ceiling, base)}${dense}${layout}`.slice(2),
          [`default arm: ${runLength(m.task)}`],
        ),
      );
    }
  }
  for (const m of metrics.filter((x) => ['linear(avg).top1', 'knn(avg).top1'].includes(x.key))) {
    // Paired: the teachers of the runs whose final student is evaluated, and those students.
    const atEnd = (weights: PlanEvaluation['weights']) => (e: PlanEvaluation) =>
      e.task === m.task && e.weights === weights && e.atEpochs === undefined;
    const students = input.evalSettings.filter((e) => atEnd('student')(e) && resultOf(input, e));
    const paired = input.runs.filter((r) => students.some((e) => e.run === r.id));
    if (!paired.length) continue;
    // One teacher and one student result per run, in the runs' order (a run without its teacher's result: none).
    const ofRun = (weights: PlanEvaluation['weights']) =>
      paired.flatMap((p) => planResults(input, (e) => atEnd(weights)(e) && e.run === p.id).slice(0, 1));
    const [teacher, student] = [ofRun('teacher'), ofRun('student')];
    const run = paired[0];
    const pairs = `paired over ${paired.length === 1 ? 'one run' : `${paired.length} runs`} (${paired.map((r) => r.id).join(', ')})`;
    const share = run?.metrics.at(-1)?.teacherInitShare;
    // The EMA teacher is a weighted average of past students: its lag is small only against the run's length.
    const age = teacherMeanAge(run.metrics.map((x) => x.momentum ?? Number.NaN));
    const horizon = Number.isFinite(age)
      ? `; the final teacher averages the students of its run with a mean age of ${age.toFixed(0)} steps, ${((100 * age) / run.metrics.length).toFixed(0)}% of the run (${paperTeacherAges()})`
      : '';
    claims.push(
      compare(
        `teacher >= student (${m.label})`,
        'the EMA teacher is the evaluated encoder (method spec 8.2)',
        '>=',
        aggregate(teacher, m.key),
        aggregate(student, m.key),
        `${pairs}; final teacher init share ${share?.toExponential(1) ?? '?'}${horizon}`,
        undefined,
        runDifferences(teacher, student, m.key),
      ),
    );
  }
  const armClaim = (arm: string, text: (variant: string) => string, kind: '>' | '>=') => {
    const a = input.arms.find((x) => x.name === arm);
    const def = input.arms.find((x) => x.name === 'capi');
    if (!a || !def) return;
    for (const m of metrics) {
      const [defaultRuns, armRuns] = [armResults(input, 'capi', m.task), armResults(input, arm, m.task)];
      const capi = aggregate(defaultRuns, m.key);
      const measured = aggregate(armRuns, m.key);
      if (!measured) continue;
      const other = withSeedSpreadOf(measured, capi);
      const paperGaps = [def.paper.ade - a.paper.ade, def.paper.in1k - a.paper.in1k];
      const paper = `ADE ${paperGaps[0].toFixed(1)} / IN-1k ${paperGaps[1].toFixed(1)} points`;
      const twoSe = capi ? 2 * gapSe(capi, other).se : Number.NaN;
      const resolved = paperGaps.filter((g) => Math.abs(g) > twoSe).length;
      // Whether an effect as large as the paper's would be resolved here at all (a power check, not a verdict).
      const power = Number.isFinite(twoSe)
        ? `; 2 combined SE here is ${twoSe.toFixed(1)} points: an effect the size of the paper's would be ${resolved === 2 ? 'resolved' : resolved ? 'resolved for its larger gap only' : 'within noise'}`
        : '';
      claims.push(
        compare(`${text(a.variant)} (${m.label})`, paper, kind, capi, other, power.slice(2), [
          `default: ${diagnosticsLine(input, defaultRuns)}`,
          `${arm}: ${diagnosticsLine(input, armRuns)}`,
        ]),
      );
    }
  };
  armClaim('sk-standard', () => 'position-wise SK >= standard SK', '>=');
  for (const arm of ['mask-inverse-block', 'mask-block', 'mask-uniform']) armClaim(arm, (v) => `inverse block + roll > ${v}`, '>');
  armClaim('registers-0', () => 'registers help (default > 0 registers)', '>');
  for (const task of [...new Set(input.results.map((r) => r.task))]) {
    // The teacher's, as the paper evaluates, and the student's: the encoder its predictor was trained on.
    const teacher = armResults(input, 'capi', task);
    // The run length is the baseline claims' first part (said once; "as above" here), the predictor's fit its own.
    const predictor = predictorEvidence(input, teacher);
    const evidence = [`default arm: ${runLength(task)}`, ...(predictor ? [`default arm's predictor: ${predictor}`] : [])];
    for (const [who, capi] of [
      ['', teacher],
      ['student, ', armStudentResults(input, 'capi', task)],
    ] as [string, EvalResult[]][]) {
      for (const [pp, avg, paper] of [
        ['linear(pred-pool).top1', 'linear(avg).top1', 'IN-1k linear 81.1 vs 77.1'],
        ['knn(pred-pool).top1', 'knn(avg).top1', 'IN-1k k-NN 73.8 vs 57.1'],
      ] as [MetricKey, MetricKey, string][]) {
        const a = aggregate(capi, pp);
        if (!a) continue;
        claims.push(
          compare(
            `predictor pooling > average pooling (${who}${task} ${pp.split('(')[0]})`,
            paper,
            '>',
            a,
            aggregate(capi, avg),
            '',
            evidence,
            runDifferences(capi, capi, pp, avg),
          ),
        );
      }
    }
  }
  return claims;
}

/** `+1.2 ± 0.4`, with `§` where the SE is paired (statistics.ts gapSe). */
export const fmtGap = (c: Claim) =>
  c.gap === undefined ? '-' : `${c.gap >= 0 ? '+' : ''}${c.gap.toFixed(1)} ± ${c.se!.toFixed(1)}${c.paired ? '§' : ''}`;

/** What the selection flags of a claim's two rows say (a probe at its grid edge or not converged weakens the comparison). */
export function flagEvidence(c: Claim): string {
  const flags = (x: Aggregate | undefined, who: string) =>
    [
      x?.atGridEdge ? `${who}'s selection sits at the edge of its grid` : '',
      x?.notConverged ? `${who}'s probe had not converged` : '',
    ].filter(Boolean);
  const all = [...flags(c.a, 'A'), ...flags(c.b, 'B')];
  return all.length ? `; ${all.join(', ')}` : '';
}

/** "12 hold, 3 hold (within 2 SE), ...": how many claims got each verdict, in the order of the verdicts. */
export function verdictCounts(claims: Claim[]): string {
  const order: Verdict[] = [
    'holds',
    'holds (within 2 SE)',
    'not resolved (within 2 SE)',
    'does not hold (reversed beyond 2 SE)',
    'not testable here',
  ];
  return order
    .map((v) => [v, claims.filter((c) => c.verdict === v).length] as const)
    .filter(([, n]) => n > 0)
    .map(([v, n]) => `${n} ${v}`)
    .join(', ');
}

/** Each claim that does not hold, with its evidence; `where` the claims were tested ('here', 'at the end'). */
export function discussion(claims: Claim[], where = 'here'): string {
  if (!claims.length) return `No claim could be tested ${where} yet: the rows on one side or the other are not evaluated.\n`;
  const open = claims.filter((c) => c.verdict !== 'holds' && c.verdict !== 'holds (within 2 SE)');
  if (!open.length) return `Every claim tested ${where} holds.\n`;
  // The runs behind several claims are described once, before the first of them; later, by name.
  const lines: string[] = [];
  const said = new Set<string>();
  let last = '';
  for (const c of open) {
    const key = c.shared?.join('; ') ?? '';
    if (c.shared && key !== last) {
      const parts = c.shared.map((part) => (said.has(part) ? `${part.split(':')[0]}: as above` : part));
      lines.push(`- Runs behind the claims below: ${parts.join('; ')}.`);
      for (const part of c.shared) said.add(part);
    }
    last = key;
    const own = [c.evidence, flagEvidence(c).slice(2)].filter(Boolean).join('; ');
    lines.push(`- **${c.claim}**: ${c.verdict}; gap ${fmtGap(c)} points.${own ? ` Evidence: ${own}.` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
