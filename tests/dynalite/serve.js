// Starts dynalite for the tests (tests/support/servers/dynalite.py): in memory, on 127.0.0.1:PORT, tables
// ACTIVE (and deleted) at once. Usage: node serve.js PORT
//
// dynalite 4.0.0 rethrows an error of an incoming request, so one client that dies in the middle
// of a request (the fault and end-to-end tests SIGKILL beats and workers) would end the server
// for every later test (architect/dynalite#183). Here such an error is logged instead: the request
// is gone with its client, and the server goes on serving the others.
//
// dynalite 4.0.0 also keys a secondary-index entry by the index's own key plus the first 6 hex
// digits of an MD5 of the item's table key, so two items of one partition with the same index
// sort key (instances due at the same moment: the ready_at index) whose digests share those 24
// bits get ONE entry: the later write replaces the other's, and that item is never queried (nor
// claimed) again. With 300 instances due at once that happens in about 1 test run in 370, at
// random (the partition key holds the test's random namespace). DynamoDB keeps every item in an
// index. The patch below appends the whole table key to the index key, so every item has its own
// entry (equal sort keys still come in dynalite's order); dynalite's db module is loaded patched
// before dynalite itself, and the server refuses to start if the code to patch has changed.
'use strict'

const fs = require('fs')
const Module = require('module')
const path = require('path')

function loadPatchedDb () {
  const file = path.join(path.dirname(require.resolve('dynalite')), 'db', 'index.js')
  const source = fs.readFileSync(file, 'utf8')
  const tied = 'return createKey(item, table, keySchema) + hashPrefix.apply(this, tableKeyPieces)\n'
  if (source.split(tied).length !== 2) {
    throw new Error(`serve.js: ${file} no longer has the index key it patches; check the patch`)
  }
  const unique = tied.replace('\n', " + '/' + createKey(item, table)\n")
  const patched = new Module(file, module)
  patched.filename = file
  patched.paths = Module._nodeModulePaths(path.dirname(file))
  patched._compile(source.replace(tied, unique), file)
  patched.loaded = true
  require.cache[file] = patched
}

loadPatchedDb()
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
