// A KIP-848 consumer (@platformatic/kafka, groupProtocol "consumer") for the
// integration tests: joins GROUP on TOPIC at BOOTSTRAP and prints one JSON line
// per event on stdout: {"assigned": [[topic, partition], ...]} when its
// assignment changes, {"record": [topic, partition, offset, value]} per record.
// Runs until stdin closes, then leaves the group and prints {"closed": true}.
import { Consumer, stringDeserializers } from '@platformatic/kafka'

const [bootstrap, group, topic] = process.argv.slice(2)
const out = obj => process.stdout.write(JSON.stringify(obj) + '\n')

const consumer = new Consumer({
  groupId: group,
  clientId: 'vltava-node-kip848',
  bootstrapBrokers: [bootstrap],
  groupProtocol: 'consumer',
  deserializers: stringDeserializers
})

let last = ''
const report = () => {
  const now = (consumer.assignments || [])
    .flatMap(a => a.partitions.map(p => [a.topic, p]))
    .sort((x, y) => x[1] - y[1])
  const key = JSON.stringify(now)
  if (key !== last) {
    last = key
    out({ assigned: now })
  }
}

const stream = await consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest', autocommit: true })
const timer = setInterval(report, 100)
stream.on('data', m => {
  report()
  out({ record: [m.topic, m.partition, Number(m.offset), m.value] })
})
stream.on('error', e => out({ error: String(e) }))

process.stdin.resume()
process.stdin.on('end', async () => {
  clearInterval(timer)
  await stream.close()
  await consumer.close()
  out({ closed: true })
  process.exit(0)
})
