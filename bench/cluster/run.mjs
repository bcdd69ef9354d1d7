// Cluster bench (issue 12): WHIP POST latency (POST to 201) with the cluster
// off and on, and Redis commands per second idle and with 1000 sessions.
// Runs inside a private network namespace, like the e2e tests:
//   SFUD_BIN=target/release/sfud scripts/in-netns.sh node bench/cluster/run.mjs [OUT.json]
// Needs e2e/node_modules (scripts/install-test-deps.sh) and redis-server.
import { writeFileSync } from 'node:fs';
import { startRedis, startNode, redisCli, waitForNodes, NODE_IPS } from '../../e2e/lib/cluster.mjs';
import { whipOffer, whepOffer } from '../../e2e/lib/ops.mjs';
import { sleep } from '../../e2e/lib/util.mjs';

const N = Number(process.env.N || 300);
const out = process.argv[2];

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const summary = (xs) => ({ n: xs.length, p50_ms: +pct(xs, 50).toFixed(2), p99_ms: +pct(xs, 99).toFixed(2), mean_ms: +(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2) });

/** POSTs an offer, following a 307 itself; returns { ms, location, status }. */
async function post(base, path, sdp) {
  const t0 = performance.now();
  let url = `${base}${path}`;
  for (let hops = 0; hops < 3; hops++) {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: sdp, redirect: 'manual' });
    await res.arrayBuffer();
    if (res.status === 307) { url = res.headers.get('location'); continue; }
    const ms = performance.now() - t0;
    if (res.status !== 201) throw new Error(`POST ${url}: ${res.status}`);
    return { ms, location: new URL(res.headers.get('location'), url).toString() };
  }
  throw new Error('redirect loop');
}

async function latency(base, prefix) {
  const times = [];
  for (let i = 0; i < N; i++) {
    const r = await post(base, `/whip/${prefix}-${i}`, whipOffer());
    times.push(r.ms);
    await fetch(r.location, { method: 'DELETE' });
  }
  return summary(times.slice(Math.min(20, N / 10))); // first requests warm up connections
}

const commandsProcessed = () => Number(/total_commands_processed:(\d+)/.exec(redisCli('INFO', 'stats'))[1]);
async function commandRate(secs) {
  const a = commandsProcessed();
  await sleep(secs * 1000);
  const b = commandsProcessed();
  return +((b - a - 1) / secs).toFixed(1); // minus our own INFO
}

const env = { SFUD_LIMITS__MAX_PENDING_PER_ADDRESS: '5000', SFUD_LIMITS__CONNECT_TIMEOUT_SECS: '300', SFUD_LIMITS__MAX_SESSIONS_PER_IDENTITY: '5000', SFUD_LOG__LEVEL: 'warn' };
const results = { n_posts: N, ttl_secs: 10 };
const redis = await startRedis('bench-redis');
try {
  // 1. Cluster off, one node.
  let node = await startNode(0, { env: { ...env, SFUD_CLUSTER__ENABLED: 'false' } });
  results.whip_post_cluster_off = await latency(node.url, 'off');
  await node.kill();
  // 2. Cluster on, one node: every first join is placed through Redis (one EVALSHA), always here.
  node = await startNode(0, { env, ttlSecs: 10 });
  await waitForNodes(node.url, ['node1']);
  results.whip_post_cluster_on_local = await latency(node.url, 'on1');
  await node.kill();
  redisCli('FLUSHALL');
  // 3. Three nodes, every POST to node 1: 2 of 3 new rooms are redirected (two HTTP exchanges).
  const nodes = [];
  for (let i = 0; i < 3; i++) nodes.push(await startNode(i, { env, ttlSecs: 10 }));
  await waitForNodes(nodes[0].url, ['node1', 'node2', 'node3']);
  results.whip_post_cluster_on_3_nodes_via_node1 = await latency(nodes[0].url, 'on3');
  // 4. Redis commands per second: idle, then with 1000 sessions (100 rooms x 1 WHIP + 9 WHEP).
  await sleep(4000);
  results.redis_commands_per_sec_idle_3_nodes = await commandRate(20);
  let sessions = 0;
  for (let r = 0; r < 100; r++) {
    const pub = await post(nodes[0].url, `/whip/load-${r}`, whipOffer());
    const base = new URL(pub.location).origin;
    sessions++;
    for (let v = 0; v < 9; v++) { await post(base, `/whep/load-${r}`, whepOffer()); sessions++; }
  }
  const per = [];
  for (const n of nodes) per.push((await (await fetch(`${n.url}/api/v1/sessions`)).json()).length);
  results.sessions_per_node = Object.fromEntries(nodes.map((n, i) => [n.id, per[i]]));
  await sleep(4000);
  results.redis_commands_per_sec_1000_sessions_3_nodes = await commandRate(20);
  results.sessions = sessions;
  for (const n of nodes) await n.kill();
} finally {
  await redis.kill();
}
console.log(JSON.stringify(results, null, 2));
if (out) writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
