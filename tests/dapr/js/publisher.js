// A Dapr app's publisher, written for Dapr and run as it is: it publishes
// to the pub/sub component "pubsub" through the sidecar the Dapr SDK finds
// at 127.0.0.1:$DAPR_HTTP_PORT, and prints what each call answered as one
// JSON line.
const { DaprClient, CommunicationProtocolEnum } = require("@dapr/dapr");

async function main() {
  const client = new DaprClient({ communicationProtocol: CommunicationProtocolEnum.HTTP });
  const answers = {};
  answers.object = await client.pubsub.publish("pubsub", "orders", { orderId: 1 });
  answers.string = await client.pubsub.publish("pubsub", "orders", "hello");
  answers.cloudEvent = await client.pubsub.publish("pubsub", "orders", {
    specversion: "1.0",
    id: "order-3",
    source: "/shop",
    type: "order.created",
    datacontenttype: "application/json",
    data: { orderId: 3 },
  });
  answers.bulk = await client.pubsub.publishBulk("pubsub", "orders", [
    { orderId: 4 },
    "five",
    { entryID: "e6", event: { orderId: 6 }, contentType: "application/json" },
  ]);
  console.log(JSON.stringify(answers));
  await client.stop();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
