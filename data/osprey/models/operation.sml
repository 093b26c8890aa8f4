# One record operation: $.operation.* of at-kafka's standard payload.
Import(rules=['models/base.sml'])

OperationKind: Optional[str] = JsonData(
  path='$.operation.action',
  required=False,
)

IsCreate = OperationKind == 'create'
IsUpdate = OperationKind == 'update'
IsDelete = OperationKind == 'delete'

Collection: Optional[str] = JsonData(
  path='$.operation.collection',
  required=False,
)

Rkey: Optional[str] = JsonData(
  path='$.operation.rkey',
  required=False,
)

# at://did/collection/rkey
RecordUri: Entity[str] = EntityJson(
  type='RecordUri',
  path='$.operation.uri',
  required=False,
)

# "" for deletes
Cid: Optional[str] = JsonData(
  path='$.operation.cid',
  required=False,
)

RecordPath: Optional[str] = JsonData(
  path='$.operation.path',
  required=False,
)

RecordType: Optional[str] = JsonData(
  path='$.operation.record."$type"',
  required=False,
)

# app.bsky.feed.post
PostText: Optional[str] = JsonData(
  path='$.operation.record.text',
  required=False,
)

# like and repost: subject = {uri, cid}; follow and block: subject = "did:…"
SubjectUri: Optional[str] = JsonData(
  path='$.operation.record.subject.uri',
  required=False,
)

SubjectRaw: Optional[str] = JsonData(
  path='$.operation.record.subject',
  required=False,
  coerce_type=True,
)

Subject: Optional[str] = ResolveOptional(optional_value=SubjectUri, default_value=SubjectRaw)

ReplyParentUri: Optional[str] = JsonData(
  path='$.operation.record.reply.parent.uri',
  required=False,
)

RecordCreatedAt: Optional[str] = JsonData(
  path='$.operation.record.createdAt',
  required=False,
)

# app.bsky.actor.profile
ProfileDisplayName: Optional[str] = JsonData(
  path='$.operation.record.displayName',
  required=False,
)

ProfileDescription: Optional[str] = JsonData(
  path='$.operation.record.description',
  required=False,
)
