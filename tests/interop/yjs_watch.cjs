// A y-websocket WebsocketProvider with its default options (messageReconnectTimeout 30 s),
// reporting what it lives through: node yjs_watch.cjs <serverUrl> <token> [silent]
// ("silent": its awareness state is null, so it sends no awareness renewals to be echoed)
// JSON lines on stdout:
//   {"status": "connected" | "disconnected" | "connecting"}   the provider's status events
//   {"synced": true}                                           the first sync
//   {"permission_denied": "<reason>"}                          the provider's permission-denied handler
// Lines on stdin:
//   {"insert": "..."}   append text to the shared Y.Text "code"
//   {"done": true}      report {"text": ...} and exit
const Y = require('yjs')
const { WebsocketProvider } = require('y-websocket')
const WebSocket = require('ws')
const readline = require('readline')

const [serverUrl, token, mode] = process.argv.slice(2)
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

// y-websocket's permission-denied handler warns on the console with the server's reason.
const PREFIX = 'Permission denied to access '
const warn = console.warn
console.warn = (...args) => {
  const text = String(args[0])
  if (text.startsWith(PREFIX)) say({ permission_denied: text.slice(text.indexOf('\n') + 1) })
  else warn(...args)
}

const doc = new Y.Doc()
const text = doc.getText('code')
const provider = new WebsocketProvider(serverUrl, 'doc', doc, {
  WebSocketPolyfill: WebSocket,
  params: { access_token: token },
  disableBc: true
})
if (mode === 'silent') provider.awareness.setLocalState(null)
else provider.awareness.setLocalStateField('user', { name: 'watcher' })
provider.on('status', (event) => say({ status: event.status }))
provider.on('sync', (synced) => { if (synced) say({ synced: true }) })

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line)
  if (cmd.insert !== undefined) {
    text.insert(text.length, cmd.insert)
    say({ inserted: cmd.insert })
  } else if (cmd.done) {
    say({ text: text.toString() })
    provider.destroy()
    setTimeout(() => process.exit(0), 50)
  }
})

setTimeout(() => { say({ error: 'timed out' }); process.exit(2) }, 120000)
