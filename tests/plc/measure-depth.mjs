// How deep a record the official PDS accepts: starts a PLC directory and one PDS (as
// run-plc.mjs does), creates an account, warms the PDS up with ordinary records, then
// tries createRecord (validate: false) with records nested N arrays or N maps deep (the
// record's own map included), five times per depth, and prints how many were accepted
// and, for the last refusal, why. Not a test: run it by hand to re-measure the numbers
// quoted at ATK_CBOR_MAX_DEPTH (src/core/atk-cbor.h) and in the README.
//   node tests/plc/measure-depth.mjs [DEPTH…]
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import { PDS, envToCfg, envToSecrets } from '@atproto/pds'
import { Database, PlcServer } from '@did-plc/server'

process.env.LOG_ENABLED = 'false'

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
const randomHex = (n) => Buffer.from(crypto.getRandomValues(new Uint8Array(n))).toString('hex')

// body: a JSON text (deep records cannot go through JSON.stringify).
const post = async (base, method, body, token) => {
  const res = await fetch(`${base}/xrpc/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body,
  })
  return { ok: res.ok, status: res.status, text: await res.text() }
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'atk-measure-'))
const plcPort = await freePort()
const plc = PlcServer.create({ db: Database.mock(), port: plcPort })
await plc.start()
mkdirSync(path.join(dir, 'blobs'), { recursive: true })
const port = await freePort()
const env = {
  port,
  hostname: 'localhost',
  devMode: true,
  dataDirectory: dir,
  blobstoreDiskLocation: path.join(dir, 'blobs'),
  didPlcUrl: `http://127.0.0.1:${plcPort}`,
  serviceHandleDomains: ['.test'],
  inviteRequired: false,
  rateLimitsEnabled: false,
  jwtSecret: randomHex(16),
  adminPassword: 'admin-pass',
  plcRotationKeyK256PrivateKeyHex: randomHex(32),
  crawlers: [],
}
const pds = await PDS.create(envToCfg(env), envToSecrets(env))
await pds.start()
const base = `http://127.0.0.1:${port}`
const account = await post(base, 'com.atproto.server.createAccount',
  JSON.stringify({ handle: 'measure.test', email: 'measure@example.com', password: 'password' }))
if (!account.ok) throw new Error(`createAccount: ${account.status} ${account.text}`)
const session = JSON.parse(account.text)

const nested = (kind, levels) => {
  const n = levels - 1
  return kind === 'array' ? '['.repeat(n) + '"leaf"' + ']'.repeat(n) : '{"a":'.repeat(n) + '"leaf"' + '}'.repeat(n)
}
const create = (kind, levels) =>
  post(base, 'com.atproto.repo.createRecord',
    `{"repo":"${session.did}","collection":"com.example.nest","validate":false,` +
      `"record":{"$type":"com.example.nest","v":${nested(kind, levels)}}}`,
    session.accessJwt)

for (let i = 0; i < 50; i++) await create('map', 100)
const depths = process.argv.length > 2 ? process.argv.slice(2).map(Number)
  : [1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 20000]
for (const kind of ['array', 'map']) {
  for (const levels of depths) {
    let accepted = 0
    let why = ''
    for (let i = 0; i < 5; i++) {
      const r = await create(kind, levels)
      if (r.ok) accepted++
      else why = `${r.status} ${r.text.slice(0, 100)}`
    }
    console.log(`${kind} ${levels}: ${accepted}/5 accepted ${why}`)
  }
}
await pds.destroy()
await plc.destroy()
rmSync(dir, { recursive: true, force: true })
process.exit(0)
