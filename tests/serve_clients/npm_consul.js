// The npm `consul` client (unchanged, installed by the test set-up) against `mesh-gitops serve`:
// KV writes and locks, agent services with checks and maintenance, catalog and health reads,
// sessions, transactions, status, a filter, an unknown datacenter, and a blocking watch.
// Usage: node npm_consul.js <node_modules> <host> <port>
"use strict";
const assert = require("assert");
const path = require("path");
const Consul = require(path.join(process.argv[2], "consul"));
const consul = new Consul({ host: process.argv[3], port: process.argv[4] });

async function main() {
  // KV: booleans decoded as booleans, flags, keys with a separator, cas.
  assert.strictEqual(await consul.kv.set({ key: "app/config/a", value: "1", flags: 42 }), true);
  assert.strictEqual(await consul.kv.set("app/config/b", "2"), true);
  assert.strictEqual(await consul.kv.set("app/other", "3"), true);
  const a = await consul.kv.get("app/config/a");
  assert.strictEqual(a.Value, "1");
  assert.strictEqual(a.Flags, 42);
  assert.deepStrictEqual(await consul.kv.keys({ key: "app/", separator: "/" }), ["app/config/", "app/other"]);
  // A refused write answers `false`, which this client resolves as `undefined` (its pipeline
  // keeps only truthy bodies); against text/plain it resolved the string "false" instead.
  assert.strictEqual(await consul.kv.set({ key: "app/config/a", value: "x", cas: 1 }), undefined);
  assert.strictEqual((await consul.kv.get("app/config/a")).Value, "1");
  assert.strictEqual(await consul.kv.set({ key: "app/config/a", value: "2", cas: a.ModifyIndex }), true);
  const tree = await consul.kv.get({ key: "app/", recurse: true });
  assert.strictEqual(tree.length, 3);

  // Sessions and locks: the lock is acquired (true), refused to another session (false), and
  // released with the `delete` behaviour deleting the key.
  const s1 = (await consul.session.create({ name: "one", ttl: "15s", behavior: "delete" })).ID;
  const s2 = (await consul.session.create({ name: "two" })).ID;
  assert.strictEqual(await consul.kv.set({ key: "locks/leader", value: "me", acquire: s1 }), true);
  assert.strictEqual(await consul.kv.set({ key: "locks/leader", value: "you", acquire: s2 }), undefined);
  assert.strictEqual((await consul.kv.get("locks/leader")).Session, s1);
  const info = await consul.session.info(s1);
  assert.strictEqual(info.Behavior, "delete");
  const mine = await consul.session.node(info.Node);
  assert.ok(mine.some((s) => s.ID === s1) && mine.some((s) => s.ID === s2));
  const renewed = await consul.session.renew(s1);
  assert.strictEqual(renewed[0].ID, s1);
  await consul.session.destroy(s1);
  assert.strictEqual(await consul.kv.get("locks/leader"), undefined);
  await consul.session.destroy(s2);

  // Agent: a service with a TTL check and a sidecar; the check drives its health.
  await consul.agent.service.register({
    name: "web", id: "web-1", port: 8080, tags: ["v1"], meta: { env: "prod" },
    check: { ttl: "30s", status: "critical" },
    connect: { sidecarService: {} },
  });
  const services = await consul.agent.service.list();
  assert.ok(services["web-1"] && services["web-1-sidecar-proxy"], JSON.stringify(services));
  assert.strictEqual(services["web-1"].Meta.env, "prod");
  assert.strictEqual(services["web-1-sidecar-proxy"].Kind, "connect-proxy");
  const checks = await consul.agent.check.list();
  assert.strictEqual(checks["service:web-1"].Status, "critical");
  assert.deepStrictEqual(await consul.health.service({ service: "web", passing: true }), []);
  await consul.agent.check.pass({ id: "service:web-1", note: "ok" });
  const healthy = await consul.health.service({ service: "web", passing: true });
  assert.strictEqual(healthy.length, 1);
  assert.strictEqual(healthy[0].Service.ID, "web-1");
  assert.ok(healthy[0].Checks.some((c) => c.CheckID === "serfHealth"));

  // Maintenance takes it out of the passing set, and back.
  await consul.agent.service.maintenance({ id: "web-1", enable: true, reason: "deploy" });
  assert.deepStrictEqual(await consul.health.service({ service: "web", passing: true }), []);
  const critical = await consul.health.state("critical");
  assert.ok(critical.some((c) => c.CheckID === "_service_maintenance:web-1" && c.Notes === "deploy"));
  await consul.agent.service.maintenance({ id: "web-1", enable: false });
  assert.strictEqual((await consul.health.service({ service: "web", passing: true })).length, 1);

  // Catalog reads, with a filter.
  const dcs = await consul.catalog.datacenters();
  assert.deepStrictEqual(dcs, ["dc1"]);
  const nodes = await consul.catalog.node.list();
  assert.strictEqual(nodes.length, 1);
  const onNode = await consul.catalog.node.services(nodes[0].Node);
  assert.ok(onNode.Services["web-1"]);
  const byTag = await consul.catalog.service.nodes({ service: "web", tag: "v1" });
  assert.strictEqual(byTag.length, 1);
  const filtered = await consul.catalog.service.nodes({ service: "web", filter: "ServiceMeta.env == staging" });
  assert.deepStrictEqual(filtered, []);
  const proxies = await consul.catalog.connect.nodes("web");
  assert.strictEqual(proxies[0].ServiceID, "web-1-sidecar-proxy");
  const svcList = await consul.catalog.service.list();
  assert.deepStrictEqual(svcList.web, ["v1"]);

  // A transaction: all or nothing.
  const ok = await consul.transaction.create([
    { KV: { Verb: "set", Key: "txn/a", Value: Buffer.from("1").toString("base64") } },
    { KV: { Verb: "get", Key: "app/other" } },
  ]);
  assert.strictEqual(ok.Results.length, 2);
  assert.strictEqual(Buffer.from(ok.Results[1].KV.Value, "base64").toString(), "3");
  await assert.rejects(
    consul.transaction.create([
      { KV: { Verb: "set", Key: "txn/b", Value: "" } },
      { KV: { Verb: "check-not-exists", Key: "txn/a" } },
    ]),
    (err) => err.statusCode === 409,
  );
  assert.strictEqual(await consul.kv.get("txn/b"), undefined);

  // Another datacenter: Consul's 500.
  await assert.rejects(consul.kv.get({ key: "app/other", dc: "dc9" }), (err) =>
    err.statusCode === 500 && /No path to datacenter/.test(err.message));

  // Status and members.
  assert.strictEqual(typeof (await consul.status.leader()), "string");
  assert.strictEqual((await consul.status.peers()).length, 1);
  assert.strictEqual((await consul.agent.members())[0].Status, 1);

  // A watcher (consul-template style) sees a change through a blocking query.
  await new Promise((resolve, reject) => {
    const watch = consul.watch({ method: consul.health.service, options: { service: "web", wait: "5s" } });
    let seen = 0;
    const timer = setTimeout(() => { watch.end(); reject(new Error("the watch saw no change")); }, 20000);
    watch.on("change", (data) => {
      seen += 1;
      if (seen === 1) {
        consul.agent.check.warn({ id: "service:web-1" }).catch(reject);
      } else if (data[0].Checks.some((c) => c.Status === "warning")) {
        clearTimeout(timer);
        watch.end();
        resolve();
      }
    });
    watch.on("error", (err) => { clearTimeout(timer); watch.end(); reject(err); });
  });

  await consul.agent.service.deregister("web-1");
  assert.deepStrictEqual(await consul.agent.check.list(), {});
  console.log("all checks passed");
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
