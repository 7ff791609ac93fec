/**
 * Methods the coordinator serves to GPU processes: registration, the mm side
 * of drm_gpusvm (find_or_insert's VMA and page checks fused with the first
 * step that follows it, hmm_range_fault), migrate_vma collect and commit in
 * both directions, DMA to system memory, and notifier removal.
 *
 * Page data rides as binary payload: the pages collected for a migration to
 * VRAM (in the reply), the pages of a migration to RAM (with the commit),
 * DMA reads and writes.
 */
import { Type, type Static } from '@sinclair/typebox'
import { Address, Bool, Closed, Count, Id } from '../../schemas/common.js'

const Code = Type.String()
const Ints = Type.Array(Count)
/** hmm entries, run-length encoded (page-id.ts hmmRuns). */
const Runs = Type.Array(Type.Integer({ minimum: -1, maximum: 2 ** 36 }))
const Span = Closed({ start: Address, end: Address })

export const NotifierRef = Closed({ id: Id, start: Address, end: Address })

export const Pages = Closed({ seq: Count, runs: Runs })
export type Pages = Static<typeof Pages>

export const StepError = Closed({ code: Code, message: Type.String() })

export const Collected = Closed({
  session: Count,
  /** Per page of the range: 1 = its source bytes are in the payload, 0 = zero-fill. */
  copy: Ints
})

/** [notifierId, seq, ...]: the settled seq of each notifier the GPU invalidated itself. */
const SelfSeqs = Ints

const FaultStep = Closed({ write: Bool })

export const RangePrepareParams = Closed({
  pid: Id,
  notifier: NotifierRef,
  /** find_or_insert of a new range: the fault address and what the chunk must avoid. */
  locate: Type.Union([Type.Null(), Closed({
    addr: Address,
    gvaStart: Address,
    gvaEnd: Address,
    /** Per chunk size (largest first): does its aligned window around addr overlap an existing range? */
    overlaps: Type.Array(Bool, { maxItems: 8 }),
    readOnly: Bool,
    checkPagesThreshold: Count,
    devmemPossible: Bool
  })]),
  /** Or an existing range. */
  range: Type.Union([Type.Null(), Span]),
  /** Then migrate the range to the caller's VRAM (migrate_vma_setup) ... */
  migrate: Type.Union([Type.Null(), Closed({
    selfNotifiers: Ints,
    /**
     * VRAM the caller set aside: if the range fits, the pages are committed
     * to it at once (one exchange) and their bytes come back to be written in.
     */
    reserve: Type.Union([Type.Null(), Closed({ pfn: Count, pages: Count })]),
    /** ... and fault the pages in when the migration had these outcomes. */
    faultOn: Type.Array(Type.Union([Type.Literal('equal'), Type.Literal('failed')]))
  })]),
  /** Then hmm_range_fault (REQ_FAULT, and WRITE unless read-only). */
  fault: Type.Union([Type.Null(), FaultStep])
})
export type RangePrepareParams = Static<typeof RangePrepareParams>

export const RangePrepareResult = Closed({
  selfSeqs: SelfSeqs,
  start: Address,
  end: Address,
  migrateDevmem: Bool,
  migrate: Type.Union([
    Type.Null(),
    Closed({ outcome: Type.Literal('collected'), collected: Collected }),
    Closed({ outcome: Type.Literal('committed'), committed: Closed({ copy: Ints, failed: Ints }) }),
    Closed({ outcome: Type.Literal('equal') }),
    Closed({ outcome: Type.Literal('failed'), error: StepError })
  ]),
  pages: Type.Union([Type.Null(), Closed({ ok: Type.Literal(true), pages: Pages }), Closed({ ok: Type.Literal(false), error: StepError })])
})
export type RangePrepareResult = Static<typeof RangePrepareResult>

export const HmmParams = Closed({
  pid: Id,
  notifier: Id,
  start: Address,
  end: Address,
  fault: Bool,
  write: Bool,
  /** range_evict: no device owner, every device page comes back to RAM. */
  ownerless: Bool
})

/** get_pages' hmm_range_fault on a range, fused into the call that ends a migration. */
const FaultAfter = Closed({ pid: Id, notifier: Id, start: Address, end: Address, write: Bool })
const PagesOutcome = Type.Union([Closed({ ok: Type.Literal(true), pages: Pages }), Closed({ ok: Type.Literal(false), error: StepError })])

export const CommitToDeviceParams = Closed({
  session: Count,
  /** First destination device pfn: an allocation's pages are contiguous. */
  dst: Count,
  fault: Type.Union([Type.Null(), FaultAfter])
})

export const CommitToDeviceResult = Closed({
  /** Pages not placed (their mapping went away meanwhile): free their VRAM. */
  failed: Ints,
  pages: Type.Union([Type.Null(), PagesOutcome])
})

export const ToRamCollected = Closed({
  session: Type.Union([Type.Null(), Count]),
  /** Per collected page: its index in the window (or pfn list) and its device pfn. */
  index: Ints,
  pfns: Ints,
  selfSeqs: SelfSeqs
})

export const CoordinatorMethods = {
  'gpu.register': {
    params: Closed({ gpu: Id, vramBytes: Count, instance: Type.String({ maxLength: 64 }), p2pUrl: Type.Optional(Type.String({ maxLength: 256 })) }),
    result: Closed({ owner: Type.Union([Type.Null(), Count]), invalidateDeadlineMs: Count, peers: Type.Array(Closed({ gpu: Id, p2pUrl: Type.String(), owner: Type.Union([Type.Null(), Count]) })) })
  },
  'svm.range_prepare': { params: RangePrepareParams, result: RangePrepareResult },
  'svm.hmm_range_fault': { params: HmmParams, result: Pages },
  'mmu.notifier_remove': { params: Closed({ pid: Id, ids: Ints }), result: Closed({}) },
  'migrate.commit_to_device': { params: CommitToDeviceParams, result: CommitToDeviceResult },
  'migrate.collect_to_ram': {
    params: Closed({ pid: Id, start: Address, end: Address, pfnLo: Count, pfnHi: Count, selfNotifiers: Ints }),
    result: ToRamCollected
  },
  'migrate.collect_device_pfns': { params: Closed({ pfns: Ints }), result: ToRamCollected },
  'migrate.commit_to_ram': {
    params: Closed({ session: Count, fault: Type.Union([Type.Null(), FaultAfter]) }),
    result: Closed({ pages: Type.Union([Type.Null(), PagesOutcome]) })
  },
  'migrate.abort': { params: Closed({ session: Count }), result: Closed({ orphans: Ints }) },
  'mm.vmas': {
    params: Closed({ pid: Id, start: Address, end: Address }),
    result: Closed({ vmas: Type.Array(Closed({ start: Address, end: Address, prot: Type.String(), shared: Bool })) })
  },
  'dma.read': { params: Closed({ segs: Ints }), result: Closed({}) },
  'dma.write': { params: Closed({ segs: Ints }), result: Closed({}) }
} as const

export type CoordinatorMethods = typeof CoordinatorMethods
