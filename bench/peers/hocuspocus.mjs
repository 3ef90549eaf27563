// Hocuspocus 4.x as people deploy it by default: in memory, no extensions.
//   node bench/peers/hocuspocus.mjs <port>
import { Server } from '@hocuspocus/server'

const port = Number(process.argv[2])
const server = new Server({ address: '127.0.0.1', port, quiet: true })
await server.listen()
console.log(`hocuspocus listening on 127.0.0.1:${port}`)
