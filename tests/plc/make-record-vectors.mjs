// Writes tests/vectors/records/: records the network accepts but that are unusual (CIDv0
// and other non-DASL links, deep nesting), with the JSON the official TypeScript libraries
// render for them, and firehose commit frames carrying them and broken records.
//
// The expectations come from @atproto/lex-cbor (DAG-CBOR decoding, multiformats CIDs) and
// @atproto/lex-json (lexStringify), as installed with the PDS — never from at-kafka.
// Run: node tests/plc/make-record-vectors.mjs [OUTDIR]   (default tests/vectors/records)
//
//   cases.jsonl   {"name", "cbor": hex DAG-CBOR record, "json": lexStringify(decode(cbor))}
//   frames.bin    [u32 LE length][frame]… one #commit frame per case below
//   frames.jsonl  one line per frame: {"seq", "ops": [{"path", "cid", "record": JSON text
//                 or null, "recordError": kind or null}]}
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { decode, encode } from '@atproto/lex-cbor'
import { lexStringify } from '@atproto/lex-json'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

const here = path.dirname(fileURLToPath(import.meta.url))
const outDir = process.argv[2] ?? path.join(here, '..', 'vectors', 'records')
mkdirSync(outDir, { recursive: true })

const sha256 = (bytes) => createHash('sha256').update(bytes).digest()
const sha512 = (bytes) => createHash('sha512').update(bytes).digest()
const DAG_CBOR = 0x71
const cidFor = (bytes) => CID.createV1(DAG_CBOR, Digest.create(0x12, sha256(bytes)))
const hex = (bytes) => Buffer.from(bytes).toString('hex')

// ---- records -----------------------------------------------------------------------------

const seed = Buffer.from('at-kafka record vectors')
const links = {
  // CIDv0: a bare sha2-256 multihash, dag-pb; printed in base58btc ("Qm…").
  v0: CID.createV0(Digest.create(0x12, sha256(seed))),
  // CIDv1 with codecs and hashes outside DASL: dag-pb, dag-json, sha2-512, identity.
  v1DagPb: CID.createV1(0x70, Digest.create(0x12, sha256(seed))),
  v1DagJson: CID.createV1(0x0129, Digest.create(0x12, sha256(seed))),
  v1Sha512: CID.createV1(0x55, Digest.create(0x13, sha512(seed))),
  v1Identity: CID.createV1(0x55, Digest.create(0x00, seed)),
}

// Nesting: `levels` arrays or maps in all, the record's own map included.
const nestArrays = (levels) => {
  let v = 'leaf'
  for (let i = 1; i < levels; i++) v = [v]
  return { $type: 'com.example.nest', v }
}
const nestMaps = (levels) => {
  let v = 'leaf'
  for (let i = 2; i < levels; i++) v = { a: v }
  return { $type: 'com.example.nest', v }
}
// Both kinds interleaved, with links and bytes deep inside.
const nestMixed = (levels) => {
  let v = { cid: links.v0, bytes: new Uint8Array([0, 1, 2, 250]), n: -7 }
  for (let i = 2; i < levels; i++) v = i % 2 ? [v, i] : { k: v, z: null }
  return { $type: 'com.example.nest', v }
}

const records = [
  ['cidv0-link', { $type: 'com.example.link', link: links.v0 }],
  [
    'cid-any-codec',
    {
      $type: 'com.example.link',
      dagPb: links.v1DagPb,
      dagJson: links.v1DagJson,
      sha512: links.v1Sha512,
      identity: links.v1Identity,
      list: [links.v0, links.v1DagPb],
    },
  ],
  [
    'cidv0-blob-ref',
    { $type: 'com.example.blob', blob: { $type: 'blob', ref: links.v0, mimeType: 'image/png', size: 3 } },
  ],
]
for (const levels of [64, 65, 128, 256, 1000]) {
  records.push([`nest-arrays-${levels}`, nestArrays(levels)])
  records.push([`nest-maps-${levels}`, nestMaps(levels)])
}
records.push(['nest-mixed-1000', nestMixed(1000)])

const cases = []
for (const [name, record] of records) {
  const cbor = encode(record)
  // What a TypeScript consumer renders: decode the block, then stringify it.
  cases.push({ name, cbor: hex(cbor), json: lexStringify(decode(cbor)) })
}
writeFileSync(path.join(outDir, 'cases.jsonl'), cases.map((c) => JSON.stringify(c)).join('\n') + '\n')

// ---- commit frames -----------------------------------------------------------------------

const varint = (n) => {
  const out = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Buffer.from(out)
}
const car = (root, blocks) =>
  Buffer.concat([
    varint(encode({ version: 1, roots: [root] }).length),
    encode({ version: 1, roots: [root] }),
    ...blocks.map(({ cid, bytes }) => Buffer.concat([varint(cid.bytes.length + bytes.length), cid.bytes, bytes])),
  ])

const did = 'did:plc:fidelitytestaaaaaaaaaaaa'
let seq = 1000
const frames = []
const oracle = []

// ops: [{ rkey, record bytes (or null for a delete), block: bytes stored in the CAR (default
// the record), cid: the op's CID (default the record's), inCar: false to leave it out,
// want: expected record JSON text (null), error: expected recordError (null) }]
const commitFrame = (ops) => {
  const blocks = []
  const opsOut = []
  const expect = []
  for (const op of ops) {
    const path = `com.example.fidelity/${op.rkey}`
    if (op.record === null) {
      opsOut.push({ action: 'delete', path, cid: null })
      expect.push({ path, cid: '', record: null, recordError: null })
      continue
    }
    const cid = op.cid ?? cidFor(op.record)
    if (op.inCar !== false) blocks.push({ cid: op.blockCid ?? cid, bytes: op.block ?? op.record })
    opsOut.push({ action: 'create', path, cid })
    expect.push({ path, cid: cid.toString(), record: op.want ?? null, recordError: op.error ?? null })
  }
  const commit = encode({ did, version: 3, data: cidFor(Buffer.from('mst')), rev: '3kabcdefghi22', prev: null, sig: new Uint8Array(64) })
  const commitCid = cidFor(commit)
  blocks.push({ cid: commitCid, bytes: commit })
  seq++
  const header = encode({ op: 1, t: '#commit' })
  const body = encode({
    seq,
    rebase: false,
    tooBig: false,
    repo: did,
    commit: commitCid,
    rev: '3kabcdefghi22',
    since: null,
    blocks: car(commitCid, blocks),
    ops: opsOut,
    blobs: [],
    time: '2026-01-01T00:00:00.000Z',
  })
  frames.push(Buffer.concat([header, body]))
  oracle.push({ seq, ops: expect })
}

const good = (name, rkey) => {
  const c = cases.find((x) => x.name === name)
  return { rkey, record: Buffer.from(c.cbor, 'hex'), want: c.json }
}
const plain = encode({ $type: 'com.example.fidelity', text: 'plain' })
const plainWant = lexStringify(decode(plain))

// Records the network accepts: each op renders as the TypeScript libraries render it.
for (const c of cases) commitFrame([good(c.name, c.name)])

// Records that truly cannot be rendered, each beside a good op that must be unaffected.
const truncated = plain.subarray(0, plain.length - 3)
const invalid = Buffer.from(plain)
invalid[0] = 0xbf // the record map made indefinite-length, which DAG-CBOR forbids
const mismatchCid = cidFor(Buffer.from('some other record'))
commitFrame([
  { rkey: 'good1', record: plain, want: plainWant },
  // CID mismatch: the CAR holds the record under the op's CID, but the bytes hash elsewhere.
  { rkey: 'mismatch', record: plain, cid: mismatchCid, error: 'cid_mismatch' },
  // Truncated CBOR whose CID is right for the bytes stored.
  { rkey: 'truncated', record: truncated, error: 'truncated' },
  // Invalid DAG-CBOR (an indefinite-length map) with a right CID.
  { rkey: 'invalid', record: invalid, error: 'bad_cbor' },
  // Missing block: the op names a CID the CAR does not hold.
  { rkey: 'missing', record: encode({ $type: 'com.example.fidelity', text: 'not here' }), inCar: false, error: 'missing_block' },
  { rkey: 'gone', record: null },
  { rkey: 'good2', record: plain, want: plainWant },
])

const frameFile = Buffer.concat(
  frames.map((f) => {
    const len = Buffer.alloc(4)
    len.writeUInt32LE(f.length)
    return Buffer.concat([len, f])
  }),
)
writeFileSync(path.join(outDir, 'frames.bin'), frameFile)
writeFileSync(path.join(outDir, 'frames.jsonl'), oracle.map((o) => JSON.stringify(o)).join('\n') + '\n')
console.log(`${cases.length} records, ${frames.length} frames written to ${outDir}`)
