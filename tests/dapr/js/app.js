// A Dapr app written for Dapr and run as it is: a DaprServer subscribed to
// three topics of the pub/sub component "pubsub" (a route, routing rules,
// and a raw payload), and a DaprClient publishing to them. The sidecar is
// found at 127.0.0.1:$DAPR_HTTP_PORT and the app listens on $APP_PORT, as
// the SDK reads them. Each delivery is printed as one JSON line
// {"route","data"}; once every expected delivery came, the last line is
// {"done":true,"published":{...}} with what each publish answered.
const {
  DaprServer,
  DaprClient,
  DaprPubSubStatusEnum,
  CommunicationProtocolEnum,
} = require("@dapr/dapr");

const PUBSUB = "pubsub";
// expected is how many handler calls the run waits for: orders ok, retry
// (RETRY, then SUCCESS), drop and dup (published twice, delivered once);
// a fast and a slow shipment; one raw payment.
const expected = 8;
const seen = [];
const retried = new Set();
let finish;
const finished = new Promise((resolve) => (finish = resolve));

function record(route, data) {
  console.log(JSON.stringify({ route, data }));
  seen.push({ route, data });
  if (seen.length === expected) finish();
}

async function onOrder(data) {
  record("orders", data);
  if (data.action === "retry" && !retried.has(data.orderId)) {
    retried.add(data.orderId);
    return DaprPubSubStatusEnum.RETRY;
  }
  if (data.action === "drop") return DaprPubSubStatusEnum.DROP;
  return DaprPubSubStatusEnum.SUCCESS;
}

// subscribe registers the subscriptions. Route names hold no "/": the SDK
// advertises "/pubsub--shipments--a/b" but serves "/pubsub--shipments--ab".
async function subscribe(server) {
  await server.pubsub.subscribe(PUBSUB, "orders", onOrder, "orders");
  await server.pubsub.subscribeWithOptions(PUBSUB, "shipments", {
    route: {
      rules: [{ match: 'event.data.speed == "fast"', path: "fast" }],
      default: "slow",
    },
  });
  server.pubsub.subscribeToRoute(PUBSUB, "shipments", "fast", async (data) => record("fast", data));
  server.pubsub.subscribeToRoute(PUBSUB, "shipments", "slow", async (data) => record("slow", data));
  await server.pubsub.subscribe(PUBSUB, "payments", async (data) => record("payments", data), "pay", {
    rawPayload: "true",
  });
}

// subscribed waits until the sidecar lists the app's three subscriptions,
// so that nothing is published before they exist.
async function subscribed(client) {
  for (let i = 0; i < 600; i++) {
    const md = await client.metadata.get();
    if ((md.subscriptions || []).length === 3) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the sidecar never listed the subscriptions");
}

async function publish(client) {
  const p = {};
  p.ok = await client.pubsub.publish(PUBSUB, "orders", { orderId: 1, action: "ok" });
  p.retry = await client.pubsub.publish(PUBSUB, "orders", { orderId: 2, action: "retry" });
  p.drop = await client.pubsub.publish(PUBSUB, "orders", { orderId: 3, action: "drop" });
  const dup = { metadata: { "cloudevent.id": "dup-1" } };
  p.dup = await client.pubsub.publish(PUBSUB, "orders", { orderId: 4, action: "ok" }, dup);
  p.dupAgain = await client.pubsub.publish(PUBSUB, "orders", { orderId: 4, action: "ok" }, dup);
  p.fast = await client.pubsub.publish(PUBSUB, "shipments", { speed: "fast" });
  p.slow = await client.pubsub.publish(PUBSUB, "shipments", { speed: "slow" });
  p.raw = await client.pubsub.publish(PUBSUB, "payments", { amount: 5 }, { metadata: { rawPayload: "true" } });
  return p;
}

async function main() {
  const server = new DaprServer({ communicationProtocol: CommunicationProtocolEnum.HTTP });
  await subscribe(server);
  await server.start();
  const client = new DaprClient({ communicationProtocol: CommunicationProtocolEnum.HTTP });
  await subscribed(client);
  const published = await publish(client);
  const timeout = setTimeout(() => {
    console.error(`only ${seen.length} of ${expected} deliveries came`);
    process.exit(1);
  }, 60000);
  await finished;
  clearTimeout(timeout);
  console.log(JSON.stringify({ done: true, published }));
  await server.stop();
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
