// A real y-websocket client for the interop test: node yjs_client.cjs <serverUrl> <token>
// Speaks JSON lines on stdout; waits for lines on stdin:
//   {"insert": "..."}          append text to the shared Y.Text "code"
//   {"await": "..."}           report {"seen": "..."} once the text contains it
//   {"done": true}             report {"text": ...} and exit
const Y = require('yjs')
const { WebsocketProvider } = require('y-websocket')
const WebSocket = require('ws')
const readline = require('readline')

const [serverUrl, token] = process.argv.slice(2)
const doc = new Y.Doc()
const text = doc.getText('code')
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const provider = new WebsocketProvider(serverUrl, 'doc', doc, {
  WebSocketPolyfill: WebSocket,
  params: { access_token: token },
  disableBc: true
})
provider.awareness.setLocalStateField('user', { name: 'node' })
provider.on('sync', (synced) => { if (synced) say({ synced: true, text: text.toString() }) })
provider.on('connection-close', (event) => { say({ closed: event ? event.code : null }) })

const waiting = new Map()
text.observe(() => {
  for (const [needle, done] of waiting) {
    if (text.toString().includes(needle)) { waiting.delete(needle); done() }
  }
})

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line)
  if (cmd.insert !== undefined) {
    text.insert(text.length, cmd.insert)
    say({ inserted: cmd.insert })
  } else if (cmd.await !== undefined) {
    const report = () => say({ seen: cmd.await })
    if (text.toString().includes(cmd.await)) report(); else waiting.set(cmd.await, report)
  } else if (cmd.done) {
    say({ text: text.toString() })
    provider.destroy()
    setTimeout(() => process.exit(0), 50)
  }
})

setTimeout(() => { say({ error: 'timed out' }); process.exit(2) }, 60000)
