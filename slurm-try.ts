import { startSlurm } from './test/helpers/slurm.js';
const c = await startSlurm();
console.log(JSON.stringify(c.env));
process.on('SIGINT', () => {
  c.stop();
  process.exit(0);
});
setInterval(() => {}, 1000);
