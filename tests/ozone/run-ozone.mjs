// A real Ozone moderation service (@atproto/ozone) behind a real PDS, for the Ozone-mode
// tests: a private PostgreSQL cluster (initdb/pg_ctl from Debian's postgresql package, a
// unix socket in a temporary directory), a PLC directory and a PDS from ../plc, and Ozone
// with its own DID (a genuine PLC operation naming its #atproto_labeler endpoint), so that
// the PDS proxies "atproto-proxy: <did>#atproto_labeler" requests to it.
//
// Prints one JSON line on stdout when ready:
//   {"pds":URL,"labeler":DID,"moderator":{"handle","did","password"},"user":{…}}
// then reads commands on stdin, one per line, answering each with one JSON line:
//   report N         N reports by the user on the moderator's account (createReport via the PDS)
//   action N         N moderation actions by the moderator (emitEvent via the PDS: comments,
//                    acknowledges, label events, alternating)
//   events           every event, oldest first, as queryEvents returns it (cursor paging)
//   ozone-down       stops Ozone (the PDS then fails the calls it proxies to it)
//   ozone-up         starts it again, on the same port and database
//   reference        what the reference's query (createdBefore=last+1ms, asc) returns on two
//                    successive polls: {"first":[ids],"second":[ids]}
// and exits when stdin closes. Logs go to stderr. With ATK_OZONE_ACCESS_TTL (e.g. "8s") the
// PDS's access tokens expire that soon (see below).
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

import { Database as OzoneDatabase, OzoneService, envToCfg, envToSecrets } from '@atproto/ozone'
import { Secp256k1Keypair } from '@atproto/crypto'
import * as plcLib from '@did-plc/lib'

const here = path.dirname(fileURLToPath(import.meta.url))
// The PLC directory and the PDS: the versions tests/plc installs.
const plcRequire = createRequire(path.join(here, '..', 'plc', 'package.json'))
const { PDS, envToCfg: pdsEnvToCfg, envToSecrets: pdsEnvToSecrets } = plcRequire('@atproto/pds')
const { Database: PlcDatabase, PlcServer } = plcRequire('@did-plc/server')

process.env.LOG_ENABLED = process.env.LOG_ENABLED ?? 'false'

// ATK_OZONE_ACCESS_TTL (e.g. "8s"): the PDS's access tokens expire that soon instead of
// after two hours, so that a client meets a genuinely expired session (ExpiredToken) and
// must refresh it. The PDS takes the lifetime from this helper's default argument.
if (process.env.ATK_OZONE_ACCESS_TTL) {
  const auth = plcRequire('@atproto/pds/dist/account-manager/helpers/auth.js')
  const createAccessToken = auth.createAccessToken
  auth.createAccessToken = (opts) =>
    createAccessToken({ ...opts, expiresIn: process.env.ATK_OZONE_ACCESS_TTL })
}

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

// PostgreSQL refuses to run as root: the cluster then belongs to "nobody".
const pgBin = (name) => {
  for (const dir of ['/usr/local/bin', '/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin',
    '/usr/lib/postgresql/15/bin']) {
    const p = path.join(dir, name)
    if (spawnSync('test', ['-x', p]).status === 0) return p
  }
  return name
}

const asPgUser = (argv) =>
  process.getuid() === 0
    ? ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', ...argv]]
    : [argv[0], argv.slice(1)]

const run = (argv) => {
  const [cmd, args] = asPgUser(argv)
  const res = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  if (res.status !== 0) throw new Error(`${argv.join(' ')}: ${res.stderr || res.error}`)
}

const startPostgres = (dir) => {
  const data = path.join(dir, 'pg')
  mkdirSync(data)
  if (process.getuid() === 0) {
    chownSync(dir, 65534, 65534)
    chownSync(data, 65534, 65534)
  }
  chmodSync(data, 0o700)
  run([pgBin('initdb'), '-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync'])
  run([pgBin('pg_ctl'), '-D', data, '-w', '-l', path.join(dir, 'pg.log'), '-o',
    `-c listen_addresses= -c unix_socket_directories=${dir} -c fsync=off`, 'start'])
  return {
    url: `postgresql://postgres@localhost/postgres?host=${encodeURIComponent(dir)}`,
    stop: () => run([pgBin('pg_ctl'), '-D', data, '-m', 'immediate', 'stop']),
  }
}

const xrpc = async (base, method, { body, params, token, proxy } = {}) => {
  const qs = params ? '?' + new URLSearchParams(params).toString() : ''
  const res = await fetch(`${base}/xrpc/${method}${qs}`, {
    method: body !== undefined ? 'POST' : 'GET',
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(proxy ? { 'atproto-proxy': proxy } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method}: ${res.status} ${text}`)
  return text ? JSON.parse(text) : {}
}

const main = async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atk-ozone-'))
  chmodSync(dir, 0o755)
  // However this process ends (a failed start, process.exit): no cluster left behind.
  let pg = null
  process.on('exit', () => {
    try {
      pg?.stop()
    } catch {}
    rmSync(dir, { recursive: true, force: true })
  })
  pg = startPostgres(dir)

  const plcPort = await freePort()
  const plc = PlcServer.create({ db: PlcDatabase.mock(), port: plcPort })
  await plc.start()
  const plcUrl = `http://127.0.0.1:${plcPort}`

  const pdsDir = path.join(dir, 'pds')
  mkdirSync(path.join(pdsDir, 'blobs'), { recursive: true })
  const pdsPort = await freePort()
  const pdsEnv = {
    port: pdsPort,
    hostname: 'localhost',
    devMode: true,
    dataDirectory: pdsDir,
    blobstoreDiskLocation: path.join(pdsDir, 'blobs'),
    didPlcUrl: plcUrl,
    serviceHandleDomains: ['.test'],
    inviteRequired: false,
    rateLimitsEnabled: false,
    jwtSecret: randomHex(16),
    adminPassword: 'admin-pass',
    plcRotationKeyK256PrivateKeyHex: randomHex(32),
    crawlers: [],
  }
  const pds = await PDS.create(pdsEnvToCfg(pdsEnv), pdsEnvToSecrets(pdsEnv))
  await pds.start()
  const pdsUrl = `http://localhost:${pdsPort}`

  const accounts = {}
  for (const name of ['mod', 'alice']) {
    const password = `${name}-password`
    const s = await xrpc(pdsUrl, 'com.atproto.server.createAccount', {
      body: { handle: `${name}.test`, email: `${name}@example.com`, password },
    })
    accounts[name] = { did: s.did, handle: s.handle, password, accessJwt: s.accessJwt }
  }

  // Ozone's DID: its labeler endpoint and its label signing key, in the PLC directory.
  const ozonePort = await freePort()
  const ozoneUrl = `http://localhost:${ozonePort}`
  const key = await Secp256k1Keypair.create({ exportable: true })
  const op = await plcLib.signOperation(
    {
      type: 'plc_operation',
      rotationKeys: [key.did()],
      alsoKnownAs: [],
      verificationMethods: { atproto_label: key.did() },
      services: { atproto_labeler: { type: 'AtprotoLabeler', endpoint: ozoneUrl } },
      prev: null,
    },
    key,
  )
  const ozoneDid = await plcLib.didForCreateOp(op)
  await new plcLib.Client(plcUrl).sendOperation(ozoneDid, op)

  const ozoneEnv = {
    devMode: true,
    port: ozonePort,
    publicUrl: ozoneUrl,
    serverDid: ozoneDid,
    appviewUrl: pdsUrl, // not consulted by the calls the tests make
    appviewDid: 'did:example:appview',
    pdsUrl,
    pdsDid: 'did:example:pds',
    dbPostgresUrl: pg.url,
    dbPostgresSchema: 'ozone',
    didPlcUrl: plcUrl,
    adminDids: [accounts.mod.did],
    moderatorDids: [],
    triageDids: [],
    adminPassword: 'admin-pass',
    signingKeyHex: Buffer.from(await key.export()).toString('hex'),
  }
  const migrator = new OzoneDatabase({ url: pg.url, schema: 'ozone' })
  await migrator.migrateToLatestOrThrow()
  await migrator.close()
  let ozone = await OzoneService.create(envToCfg(ozoneEnv), envToSecrets(ozoneEnv))
  await ozone.start()

  const proxy = `${ozoneDid}#atproto_labeler`
  const session = async (name) =>
    (await xrpc(pdsUrl, 'com.atproto.server.createSession', {
      body: { identifier: accounts[name].handle, password: accounts[name].password },
    })).accessJwt

  const queryAll = async () => {
    const token = await session('mod')
    const events = []
    let cursor
    for (;;) {
      const page = await xrpc(pdsUrl, 'tools.ozone.moderation.queryEvents', {
        params: { limit: '100', sortDirection: 'asc', includeAllUserRecords: 'true',
          ...(cursor ? { cursor } : {}) },
        token,
        proxy,
      })
      events.push(...page.events)
      if (!page.cursor || page.events.length === 0) return events
      cursor = page.cursor
    }
  }

  let n = 0
  const commands = {
    report: async (count) => {
      const token = await session('alice')
      const ids = []
      for (let i = 0; i < count; i++) {
        const r = await xrpc(pdsUrl, 'com.atproto.moderation.createReport', {
          body: {
            reasonType: 'com.atproto.moderation.defs#reasonOther',
            reason: `report ${++n}`,
            subject: { $type: 'com.atproto.admin.defs#repoRef', did: accounts.mod.did },
          },
          token,
          proxy,
        })
        ids.push(r.id)
      }
      return { ok: 'report', ids }
    },
    action: async (count) => {
      const token = await session('mod')
      const ids = []
      const kinds = [
        { $type: 'tools.ozone.moderation.defs#modEventComment', comment: 'looked at it' },
        { $type: 'tools.ozone.moderation.defs#modEventAcknowledge', comment: 'fine' },
        { $type: 'tools.ozone.moderation.defs#modEventLabel', createLabelVals: ['spam'],
          negateLabelVals: [] },
      ]
      for (let i = 0; i < count; i++) {
        const e = await xrpc(pdsUrl, 'tools.ozone.moderation.emitEvent', {
          body: {
            event: { ...kinds[n++ % kinds.length] },
            subject: { $type: 'com.atproto.admin.defs#repoRef', did: accounts.alice.did },
            createdBy: accounts.mod.did,
          },
          token,
          proxy,
        })
        ids.push(e.id)
      }
      return { ok: 'action', ids }
    },
    events: async () => ({ ok: 'events', events: await queryAll() }),
    // The labeler goes away (its port closes) and comes back on the same port and database.
    'ozone-down': async () => {
      await ozone.destroy()
      ozone = null
      return { ok: 'ozone-down' }
    },
    'ozone-up': async () => {
      ozone = await OzoneService.create(envToCfg(ozoneEnv), envToSecrets(ozoneEnv))
      await ozone.start()
      return { ok: 'ozone-up' }
    },
    reference: async () => {
      const token = await session('mod')
      const poll = async (before) =>
        (await xrpc(pdsUrl, 'tools.ozone.moderation.queryEvents', {
          params: { limit: '100', sortDirection: 'asc', includeAllUserRecords: 'true',
            ...(before ? { createdBefore: before } : {}) },
          token,
          proxy,
        })).events
      const first = await poll('')
      const last = first[first.length - 1]
      const next = new Date(new Date(last.createdAt).getTime() + 1).toISOString()
      const second = await poll(next)
      return { ok: 'reference', first: first.map((e) => e.id), second: second.map((e) => e.id) }
    },
  }

  const shutdown = async () => {
    if (ozone) await ozone.destroy().catch(() => {})
    await pds.destroy().catch(() => {})
    await plc.destroy().catch(() => {})
    process.exit(0) // the 'exit' handler stops PostgreSQL
  }

  process.stdout.write(
    JSON.stringify({
      pds: pdsUrl,
      labeler: ozoneDid,
      moderator: { handle: accounts.mod.handle, did: accounts.mod.did,
        password: accounts.mod.password },
      user: { handle: accounts.alice.handle, did: accounts.alice.did },
    }) + '\n',
  )

  const rl = readline.createInterface({ input: process.stdin })
  let chain = Promise.resolve()
  rl.on('line', (line) => {
    const [cmd, ...args] = line.trim().split(/\s+/)
    chain = chain.then(async () => {
      try {
        if (!commands[cmd]) throw new Error(`unknown command ${cmd}`)
        process.stdout.write(JSON.stringify(await commands[cmd](Number(args[0] ?? 1))) + '\n')
      } catch (err) {
        process.stdout.write(JSON.stringify({ error: String(err) }) + '\n')
      }
    })
  })
  rl.on('close', () => chain.then(shutdown))
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
