/**
 * A one-node Slurm cluster for tests (Debian's slurm-wlm and munge, no systemd): munged, slurmctld
 * and slurmd started in a temporary folder, the node idle before the tests run, every daemon
 * stopped by its PID afterwards. A machine without the packages fails with the reason (CI installs
 * them: .ci/run); it is not skipped.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface SlurmCluster {
  /** The environment the Slurm commands need (SLURM_CONF). */
  env: Record<string, string>;
  dir: string;
  /** Stops every daemon by its PID, waits for them (10 s at most) and removes the cluster's folder. */
  stop(): Promise<void>;
}

/**
 * The job credential's lifetime, which is also how long a requeued job waits before it may start
 * again (slurm.conf(5), AuthInfo cred_expire; 120 s by default). An update of the job's StartTime
 * right after `scontrol requeue` raced the requeue and was overwritten: each requeue test waited
 * the whole 120 s (the requeued job pending 168-174 s, 2026-12-07).
 */
const CRED_EXPIRE_S = 15;

const conf = (d: string, host: string, port: number, mungeSocket: string) => `ClusterName=capi-test
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${port}
SlurmdPort=${port + 1}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=${mungeSocket},cred_expire=${CRED_EXPIRE_S}
CredType=cred/munge
StateSaveLocation=${d}/state
SlurmdSpoolDir=${d}/spool
SlurmctldPidFile=${d}/slurmctld.pid
SlurmdPidFile=${d}/slurmd.pid
SlurmctldLogFile=${d}/slurmctld.log
SlurmdLogFile=${d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
JobCompType=jobcomp/filetxt
JobCompLoc=${d}/jobcomp.txt
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/linux
JobRequeue=1
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=20000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
`;

const which = (cmd: string) => ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => path.join(d, cmd)).find((p) => fs.existsSync(p));

export async function startSlurm(): Promise<SlurmCluster> {
  const missing = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scontrol'].filter((c) => !which(c));
  if (missing.length)
    throw new Error(`Slurm cannot start here: ${missing.join(', ')} not found (apt-get install slurm-wlm munge; .ci/run does)`);
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-slurm-'));
  for (const sub of ['state', 'spool']) fs.mkdirSync(path.join(d, sub));
  // Ports and a munged of its own: test files run side by side, each with its cluster, and one
  // cluster's stop must not take the daemon another still uses (a shared munged did, in CI).
  const port = 20000 + 2 * Math.floor(Math.random() * 10000);
  const mungeDir = path.join(d, 'munge');
  fs.chmodSync(d, 0o755);
  fs.mkdirSync(mungeDir);
  execFileSync('chown', ['munge:munge', mungeDir]);
  const mungeSocket = path.join(mungeDir, 'munge.socket');
  fs.writeFileSync(path.join(d, 'slurm.conf'), conf(d, 'localhost', port, mungeSocket));
  const env = { SLURM_CONF: path.join(d, 'slurm.conf') };
  const procs: ChildProcess[] = [];
  const daemon = (cmd: string, args: string[], user?: string) => {
    const p = user
      ? spawn('runuser', ['-u', user, '--', which(cmd)!, ...args], { stdio: 'ignore', env: { ...process.env, ...env } })
      : spawn(which(cmd)!, args, { stdio: 'ignore', env: { ...process.env, ...env } });
    procs.push(p);
    return p;
  };
  // Every daemon this cluster started, by its PID, the last started first.
  const kill = () => {
    for (const p of [...procs].reverse()) p.kill('SIGTERM');
  };
  // munged with the package's key and everything else in this cluster's folder.
  daemon(
    'munged',
    [
      '-F',
      '--force',
      '--num-threads=4',
      `--socket=${mungeSocket}`,
      `--pid-file=${mungeDir}/munged.pid`,
      `--log-file=${mungeDir}/munged.log`,
      `--seed-file=${mungeDir}/munged.seed`,
    ],
    'munge',
  );
  // A credential round trip tells when it answers.
  const mungeWorks = () => {
    try {
      execFileSync('sh', ['-c', `munge -n -S ${mungeSocket} | unmunge -S ${mungeSocket}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 50 && !mungeWorks(); i++) await new Promise((r) => setTimeout(r, 100));
  if (!mungeWorks()) {
    kill();
    throw new Error(
      `Slurm cannot start here: munged does not answer (munge -n | unmunge fails; is this root? log: ${mungeDir}/munged.log)`,
    );
  }
  daemon('slurmctld', ['-D', '-i']);
  await new Promise((r) => setTimeout(r, 500));
  daemon('slurmd', ['-D', '-N', 'localhost']);
  const stop = async () => {
    const exited = procs.map((p) => (p.exitCode !== null || p.signalCode !== null ? null : new Promise((r) => p.once('exit', r))));
    kill();
    await Promise.race([Promise.all(exited), new Promise((r) => setTimeout(r, 10_000))]);
    fs.rmSync(d, { recursive: true, force: true, maxRetries: 3 });
  };
  for (let i = 0; i < 100; i++) {
    try {
      const state = execFileSync('sinfo', ['-h', '-o', '%t'], {
        env: { ...process.env, ...env },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
      if (state === 'idle') return { env, dir: d, stop };
    } catch {
      // slurmctld not answering yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  kill();
  throw new Error(`Slurm did not come up: the node never became idle (logs in ${d}: slurmctld.log, slurmd.log)`);
}

/**
 * Waits for a running job whose name matches `name` and requeues it (as a preemption or a node
 * failure would); it starts again once CRED_EXPIRE_S has passed. Returns its id, '' if none ran in
 * `seconds`.
 */
export async function requeueWhenRunning(cluster: SlurmCluster, name: RegExp, seconds: number): Promise<string> {
  const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { env: { ...process.env, ...cluster.env }, encoding: 'utf8' }).trim();
  for (let i = 0; i < seconds * 5; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const running = sh('squeue', ['-h', '-t', 'RUNNING', '-o', '%i %j'])
      .split('\n')
      .map((l) => l.split(' '))
      .filter(([, job]) => job !== undefined && name.test(job));
    if (!running.length) continue;
    // Requeued while it runs: the job is stopped (SIGTERM) and starts again.
    sh('scontrol', ['requeue', running[0][0]]);
    return running[0][0];
  }
  return '';
}
