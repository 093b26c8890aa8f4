// A real PLC directory (@did-plc/server, in-memory database) and two real PDSes
// (@atproto/pds, SQLite in a temporary directory) on 127.0.0.1, for the metadata tests.
//
// Accounts are created through the PDSes' own createAccount, so their DIDs are registered
// in the PLC directory by genuine signed operations, with real handles and PDS endpoints.
// Prints one JSON line on stdout when ready:
//   {"plc":"http://127.0.0.1:P","pds":[{"url":…,"host":…}],"accounts":[{"did":…,"handle":…,"pds":…}]}
// then reads commands on stdin, one per line, answering each with one JSON line:
//   handle N NEW   change account N's handle (a real PLC update by its PDS)
//   stop-plc       stop the PLC directory (the PDSes keep running)
// and exits when stdin closes. Logs go to stderr.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'

import { PDS, envToCfg, envToSecrets } from '@atproto/pds'
import { Database, PlcServer } from '@did-plc/server'

process.env.LOG_ENABLED = process.env.LOG_ENABLED ?? 'false'

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

// A secp256k1 private key: any 32 random bytes below the curve order will do in practice.
const randomHex = (n) => {
  const bytes = new Uint8Array(n)
  crypto.getRandomValues(bytes)
  return Buffer.from(bytes).toString('hex')
}

const startPlc = async () => {
  const port = await freePort()
  const plc = PlcServer.create({ db: Database.mock(), port })
  await plc.start()
  return { plc, url: `http://127.0.0.1:${port}` }
}

// hostname "localhost" makes the PDS advertise http://localhost:PORT; any other name makes
// it advertise https://NAME (not reachable here, but the DID document is what we test).
const startPds = async (dir, hostname, plcUrl) => {
  mkdirSync(path.join(dir, 'blobs'), { recursive: true })
  const port = await freePort()
  const env = {
    port,
    hostname,
    devMode: true,
    dataDirectory: dir,
    blobstoreDiskLocation: path.join(dir, 'blobs'),
    didPlcUrl: plcUrl,
    serviceHandleDomains: hostname === 'localhost' ? ['.test'] : [`.${hostname}`],
    inviteRequired: false,
    rateLimitsEnabled: false,
    jwtSecret: randomHex(16),
    adminPassword: 'admin-pass',
    plcRotationKeyK256PrivateKeyHex: randomHex(32),
    crawlers: [],
  }
  const pds = await PDS.create(envToCfg(env), envToSecrets(env))
  await pds.start()
  const publicUrl = hostname === 'localhost' ? `http://localhost:${port}` : `https://${hostname}`
  return { pds, url: `http://127.0.0.1:${port}`, publicUrl, host: new URL(publicUrl).hostname }
}

const xrpc = async (base, method, body, token) => {
  const res = await fetch(`${base}/xrpc/${method}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method}: ${res.status} ${text}`)
  return text ? JSON.parse(text) : {}
}

const main = async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atk-plc-'))
  const { plc, url: plcUrl } = await startPlc()
  const pdses = [
    await startPds(path.join(dir, 'a'), 'localhost', plcUrl),
    await startPds(path.join(dir, 'b'), 'pds.b.test', plcUrl),
  ]
  const accounts = []
  const wanted = [
    [0, 'alice.test'],
    [0, 'carol.test'],
    [1, 'bob.pds.b.test'],
  ]
  for (const [i, handle] of wanted) {
    const session = await xrpc(pdses[i].url, 'com.atproto.server.createAccount', {
      handle,
      email: `${handle.split('.')[0]}@example.com`,
      password: 'password',
    })
    accounts.push({ did: session.did, handle: session.handle, pds: pdses[i].publicUrl, i, session })
  }

  let plcRunning = true
  const shutdown = async () => {
    for (const p of pdses) await p.pds.destroy().catch(() => {})
    if (plcRunning) await plc.destroy().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
    process.exit(0)
  }

  process.stdout.write(
    JSON.stringify({
      plc: plcUrl,
      pds: pdses.map((p) => ({ url: p.url, publicUrl: p.publicUrl, host: p.host })),
      accounts: accounts.map(({ did, handle, pds }) => ({ did, handle, pds })),
    }) + '\n',
  )

  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', async (line) => {
    const [cmd, ...args] = line.trim().split(/\s+/)
    try {
      if (cmd === 'stop-plc') {
        await plc.destroy()
        plcRunning = false
        process.stdout.write(JSON.stringify({ ok: 'stop-plc' }) + '\n')
      } else if (cmd === 'handle') {
        const account = accounts[Number(args[0])]
        await xrpc(pdses[account.i].url, 'com.atproto.identity.updateHandle',
          { handle: args[1] }, account.session.accessJwt)
        process.stdout.write(JSON.stringify({ ok: 'handle', handle: args[1] }) + '\n')
      } else {
        process.stdout.write(JSON.stringify({ error: `unknown command ${cmd}` }) + '\n')
      }
    } catch (err) {
      process.stdout.write(JSON.stringify({ error: String(err) }) + '\n')
    }
  })
  rl.on('close', shutdown)
  process.on('SIGTERM', shutdown)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
