// Starts dynalite for the tests (tests/support/servers/dynalite.py): in memory, on 127.0.0.1:PORT, tables
// ACTIVE (and deleted) at once. Usage: node serve.js PORT
//
// dynalite 4.0.0 rethrows an error of an incoming request, so one client that dies in the middle
// of a request (the fault and end-to-end tests SIGKILL beats and workers) would end the server
// for every later test (architect/dynalite#183). Here such an error is logged instead: the request
// is gone with its client, and the server goes on serving the others.
'use strict'

const dynalite = require('dynalite')

const port = Number(process.argv[2])
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node serve.js PORT')
  process.exit(2)
}

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })

server.prependListener('request', (req) => {
  const on = req.on
  req.on = function (event, listener) {
    if (event !== 'error') return on.call(this, event, listener)
    return on.call(this, 'error', (err) => {
      console.error(`dynalite: request ${req.method} ${req.url} failed: ${err.code || err.message}`)
    })
  }
})

server.listen(port, '127.0.0.1', () => {
  console.log(`dynalite listening on http://127.0.0.1:${port}`)
})

process.on('SIGTERM', () => process.exit(0))
