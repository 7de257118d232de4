// What the pass needs of LLVM's C++ API, which the C API lacks: loops,
// ScalarEvolution and SCEVExpander for fewer marks per store (ABI.md,
// "Fewer marks"), and a module's code model and dso_local for the shared
// globals (globals.rs, at the end). loco_plan_marks is called by
// instrument.rs with a function and those of its stores that need marks:
//
// 1. A store executed once in every iteration of a loop, at an address
//    affine in the loop's iteration (a SCEV add recurrence with a
//    loop-invariant step), in a loop whose trip count ScalarEvolution
//    knows, that leaves only through its latch into one exit block, and
//    that holds nothing that may synchronise, is marked after the loop:
//    the bytes it wrote are `count` blocks of `len` bytes at a stride.
//    Such "records" are lifted again out of enclosing loops of the same
//    kind, merged when they write adjacent bytes, and written as one range
//    when their blocks touch. Every record is exact: it marks the bytes the
//    stores wrote, no others (a release sends an unwritten byte of a gap
//    between written ones, so a wider mark could undo another node's
//    write).
// 2. Stores of one block that write adjacent bytes, with nothing that may
//    synchronise between them, are marked once after the last of them.
//
// Everything else is marked after itself, by the Rust side.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "llvm-c/Core.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Analysis/AssumptionCache.h"
#include "llvm/Analysis/LoopInfo.h"
#include "llvm/Analysis/ScalarEvolution.h"
#include "llvm/Analysis/ScalarEvolutionExpressions.h"
#include "llvm/Analysis/TargetLibraryInfo.h"
#include "llvm/IR/Dominators.h"
#include "llvm/IR/Function.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/CodeGen.h"
#include "llvm/TargetParser/Triple.h"
#include "llvm/Transforms/Utils/BasicBlockUtils.h"
#include "llvm/Transforms/Utils/ScalarEvolutionExpander.h"

using namespace llvm;

extern "C" {

// The shared window and the home shadow (ABI.md), from instrument.rs.
struct LocoAbi {
  uint64_t region_base;
  uint64_t home_shadow_offset;
  // The i64 global holding the span of the window to mark in.
  LLVMValueRef mark_span;
};

// What becomes of one store given to loco_plan_marks.
enum : int64_t {
  // Marked after itself (ABI.md's sequence).
  LOCO_KEEP = 0,
  // Covered by a mark emitted here (after a loop) or by a merged mark.
  LOCO_COVERED = 1,
  // Marked after itself, for `len` bytes from its address + `offset`: the
  // bytes of the stores merged into it too.
  LOCO_MERGED = 2,
};

struct LocoDecision {
  int64_t kind;
  int64_t offset;
  int64_t len;
};

struct LocoPlanStats {
  uint64_t loop_marks;     // marks emitted after loops
  uint64_t strided_marks;  // of them, those marking blocks at a stride
  uint64_t lifted_stores;  // stores they cover
  uint64_t merged_marks;   // merged marks of adjacent stores of a block
  uint64_t merged_stores;  // stores those cover (the marking one included)
};

void loco_plan_marks(LLVMValueRef function, const LLVMValueRef *stores,
                     size_t count, LocoDecision *decisions,
                     LLVMValueRef mark_dirty, const LocoAbi *abi,
                     LocoPlanStats *stats);

// Whether the module's code reaches data by 64-bit absolute addresses: no
// PIC or PIE level, and the medium or large code model (globals.rs).
int loco_absolute_data(LLVMModuleRef module);

// Marks a global value dso_local (the C API of LLVM 16 cannot).
void loco_set_dso_local(LLVMValueRef global);
}

namespace {

// Granule of the home bytes.
constexpr uint64_t Granule = 4096;

// Whether `I` may not stand between a store and its delayed mark: anything
// that may release or acquire (OpenMP runtime calls, unknown functions,
// atomics, volatile accesses, which the pass turns into runtime calls), or
// may leave the function or end the process without reaching the mark.
bool breaksMarks(const Instruction &I) {
  if (const auto *CB = dyn_cast<CallBase>(&I)) {
    if (!isa<CallInst>(CB) || CB->isInlineAsm())
      return true;
    if (const Function *F = CB->getCalledFunction()) {
      StringRef Name = F->getName();
      // The pass's own marks neither release nor acquire.
      if (Name == "loco_mark_dirty" || Name.startswith("loco_after_"))
        return false;
      // Runtime entry points synchronise whatever attributes they carry
      // (LLVM's OpenMP IR builder can give some of them nosync).
      if (Name.startswith("__kmpc_") || Name.startswith("omp_") ||
          Name.startswith("pthread_") || Name.startswith("loco_") ||
          Name.startswith("__loco_"))
        return true;
    }
    return !(CB->hasFnAttr(Attribute::NoSync) && CB->willReturn() &&
             CB->doesNotThrow());
  }
  if (const auto *S = dyn_cast<StoreInst>(&I))
    return S->isVolatile() || S->isAtomic();
  if (const auto *L = dyn_cast<LoadInst>(&I))
    return L->isVolatile() || L->isAtomic();
  return isa<FenceInst>(I) || isa<AtomicRMWInst>(I) ||
         isa<AtomicCmpXchgInst>(I);
}

// The bytes some stores wrote: `Count` blocks of `Len` bytes, block `k` at
// `Start + k * Stride`, to be marked at the start of block `At`.
struct Record {
  const SCEV *Start;  // a pointer
  const SCEV *Len;    // i64, > 0
  const SCEV *Stride; // i64
  const SCEV *Count;  // i64, >= 1
  BasicBlock *At;
  // Still one store, marked after itself unless lifted out of a loop.
  bool Single;
  SmallVector<unsigned, 4> Stores;
};

// What lifting a record out of a loop needs to know of it.
struct LoopFacts {
  bool Ok = false;
  BasicBlock *Exit = nullptr;
  const SCEV *Taken = nullptr; // backedges taken (i64)
  const SCEV *Trips = nullptr; // Taken + 1
};

class Planner {
public:
  Planner(Function &F, const LocoAbi &Abi, Function *MarkDirty,
          LocoPlanStats &Stats)
      : F(F), Abi(Abi), MarkDirty(MarkDirty), Stats(Stats),
        DL(F.getParent()->getDataLayout()), Ctx(F.getContext()),
        I64(Type::getInt64Ty(Ctx)), I8(Type::getInt8Ty(Ctx)),
        Ptr(PointerType::get(Ctx, 0)), DT(F), LI(DT), AC(F),
        TLII(Triple(F.getParent()->getTargetTriple())), TLI(TLII, &F) {}

  void run(const std::vector<StoreInst *> &Stores,
           std::vector<LocoDecision> &Out);

private:
  Function &F;
  const LocoAbi &Abi;
  Function *MarkDirty;
  LocoPlanStats &Stats;
  const DataLayout &DL;
  LLVMContext &Ctx;
  Type *I64, *I8, *Ptr;
  DominatorTree DT;
  LoopInfo LI;
  AssumptionCache AC;
  TargetLibraryInfoImpl TLII;
  TargetLibraryInfo TLI;
  // Made once the loops' exits are split (the CFG is final by then).
  std::unique_ptr<ScalarEvolution> SE;
  DenseMap<const Loop *, LoopFacts> Facts;

  void dedicateExits(const std::vector<StoreInst *> &Stores);
  LoopFacts facts(const Loop *L);
  bool lift(const Record &R, const Loop *L, const LoopFacts &X, Record &Out);
  bool safeAtExit(const Record &R);
  void normalize(Record &R);
  std::vector<Record> merge(std::vector<Record> In);
  const SCEVConstant *constantDifference(const SCEV *A, const SCEV *B);
  void mergeInBlocks(const std::vector<StoreInst *> &Stores,
                     const std::vector<unsigned> &Left,
                     std::vector<LocoDecision> &Out);
  void emit(std::vector<Record> &Records,
            const std::vector<StoreInst *> &Stores);
  Value *homeByte(IRBuilder<> &B, Value *Addr);
  std::pair<Instruction *, Value *> whenMarking(Instruction *Before,
                                                const DebugLoc &Loc);
  void emitCheckedMark(Instruction *Before, Value *Span, Value *Start,
                       Value *Len, const DebugLoc &Loc);
};

// A loop's single exit edge (from its latch) into a block other paths reach
// too gets a block of its own, where the loop's marks can go.
void Planner::dedicateExits(const std::vector<StoreInst *> &Stores) {
  SmallVector<Loop *, 8> Split;
  for (Loop *L : LI.getLoopsInPreorder()) {
    BasicBlock *Latch = L->getLoopLatch();
    BasicBlock *Exit = L->getUniqueExitBlock();
    if (!Latch || !Exit || L->getExitingBlock() != Latch ||
        L->hasDedicatedExits() || Exit->isEHPad() ||
        !isa<BranchInst>(Latch->getTerminator()))
      continue;
    bool HasStores = false;
    for (StoreInst *S : Stores)
      HasStores |= L->contains(S->getParent());
    if (HasStores)
      Split.push_back(L);
  }
  for (Loop *L : Split)
    SplitEdge(L->getLoopLatch(), L->getUniqueExitBlock(), &DT, &LI, nullptr,
              "loco.exit");
}

LoopFacts Planner::facts(const Loop *L) {
  auto Found = Facts.find(L);
  if (Found != Facts.end())
    return Found->second;
  LoopFacts X;
  Facts[L] = X; // not Ok, unless found so below
  BasicBlock *Latch = L->getLoopLatch();
  BasicBlock *Exit = L->getUniqueExitBlock();
  if (!Latch || !Exit || L->getExitingBlock() != Latch ||
      !L->hasDedicatedExits() || Exit->isEHPad() ||
      !isa<BranchInst>(Latch->getTerminator()))
    return X;
  for (BasicBlock *B : L->blocks())
    for (Instruction &I : *B)
      if (breaksMarks(I))
        return X;
  const SCEV *Taken = SE->getBackedgeTakenCount(L);
  if (isa<SCEVCouldNotCompute>(Taken) ||
      Taken->getType()->getIntegerBitWidth() > 64)
    return X;
  X.Taken = SE->getNoopOrZeroExtend(Taken, I64);
  X.Trips = SE->getAddExpr(X.Taken, SE->getOne(I64));
  X.Exit = Exit;
  X.Ok = true;
  Facts[L] = X;
  return X;
}

// Lifts `R`, marked in a block of loop `L` (not of a loop inside it), out
// of `L`: the record of what it marks over all of `L`'s iterations, marked
// at `L`'s exit. `L` runs `R.At` once in every iteration (it dominates the
// latch, the only exiting block), iterations 0 .. Taken.
bool Planner::lift(const Record &R, const Loop *L, const LoopFacts &X,
                   Record &Out) {
  if (!DT.dominates(R.At, L->getLoopLatch()))
    return false;
  if (!SE->isLoopInvariant(R.Len, L) || !SE->isLoopInvariant(R.Stride, L) ||
      !SE->isLoopInvariant(R.Count, L))
    return false;
  Out = R;
  Out.At = X.Exit;
  Out.Single = false;
  if (SE->isLoopInvariant(R.Start, L))
    return safeAtExit(Out); // the same bytes in every iteration
  const auto *AR = dyn_cast<SCEVAddRecExpr>(R.Start);
  if (!AR || AR->getLoop() != L || !AR->isAffine())
    return false;
  const SCEV *Step = SE->getNoopOrSignExtend(AR->getStepRecurrence(*SE), I64);
  if (R.Count->isOne()) {
    // One block per iteration: `Trips` blocks, `Step` apart.
    Out.Start = AR->getStart();
    Out.Stride = Step;
    Out.Count = X.Trips;
    return safeAtExit(Out);
  }
  // Several blocks per iteration, moving by `Step` each iteration: block
  // `k` of consecutive iterations must touch (|Step| <= Len), and then
  // block `k` over all iterations is one longer block.
  if (SE->isKnownNonNegative(Step) &&
      SE->isKnownPredicate(ICmpInst::ICMP_ULE, Step, R.Len)) {
    Out.Start = AR->getStart();
    Out.Len = SE->getAddExpr(R.Len, SE->getMulExpr(Step, X.Taken));
  } else if (SE->isKnownNegative(Step) &&
             SE->isKnownPredicate(ICmpInst::ICMP_ULE, SE->getNegativeSCEV(Step),
                                  R.Len)) {
    const SCEV *Back = SE->getMulExpr(Step, X.Taken); // negative
    Out.Start = SE->getAddExpr(AR->getStart(), Back);
    Out.Len = SE->getMinusSCEV(R.Len, Back);
  } else {
    return false;
  }
  return safeAtExit(Out);
}

// Whether the record's expressions can be computed at the start of its
// block (no division that might be by zero, say).
bool Planner::safeAtExit(const Record &R) {
  SCEVExpander X(*SE, DL, "loco.range", /*PreserveLCSSA=*/false);
  const Instruction *At = &*R.At->getFirstInsertionPt();
  return X.isSafeToExpandAt(R.Start, At) && X.isSafeToExpandAt(R.Len, At) &&
         X.isSafeToExpandAt(R.Stride, At) && X.isSafeToExpandAt(R.Count, At);
}

// Blocks that touch or overlap (|Stride| <= Len) are one range.
void Planner::normalize(Record &R) {
  if (R.Count->isOne())
    return;
  const SCEV *Extra = nullptr; // bytes the other blocks add to the first
  const SCEV *Start = R.Start;
  const SCEV *More = SE->getMinusSCEV(R.Count, SE->getOne(I64));
  if (SE->isKnownNonNegative(R.Stride) &&
      SE->isKnownPredicate(ICmpInst::ICMP_ULE, R.Stride, R.Len)) {
    Extra = SE->getMulExpr(R.Stride, More);
  } else if (SE->isKnownNegative(R.Stride) &&
             SE->isKnownPredicate(ICmpInst::ICMP_ULE,
                                  SE->getNegativeSCEV(R.Stride), R.Len)) {
    const SCEV *Back = SE->getMulExpr(R.Stride, More);
    Start = SE->getAddExpr(R.Start, Back);
    Extra = SE->getNegativeSCEV(Back);
  } else {
    return;
  }
  Record N = R;
  N.Start = Start;
  N.Len = SE->getAddExpr(R.Len, Extra);
  N.Stride = SE->getZero(I64);
  N.Count = SE->getOne(I64);
  if (safeAtExit(N))
    R = N;
}

const SCEVConstant *Planner::constantDifference(const SCEV *A, const SCEV *B) {
  const SCEV *D = SE->getMinusSCEV(A, B);
  if (isa<SCEVCouldNotCompute>(D))
    return nullptr;
  return dyn_cast<SCEVConstant>(D);
}

// Records marked at the same place with the same stride and count, whose
// starts differ by constants and whose lengths are constants, become one
// record per run of blocks that touch or overlap. As in mergeInBlocks, a
// record is compared with the lead of at most `Classes` earlier groups.
std::vector<Record> Planner::merge(std::vector<Record> In) {
  constexpr size_t Classes = 16;
  struct Piece {
    int64_t From, To;
    size_t Index;
  };
  struct Group {
    const SCEV *Base;
    size_t Lead;
    std::vector<Piece> Pieces;
  };
  std::vector<Record> Out;
  std::vector<Group> Groups;
  for (size_t I = 0; I < In.size(); ++I) {
    const Record &R = In[I];
    const auto *Len = dyn_cast<SCEVConstant>(R.Len);
    if (!Len) {
      Out.push_back(R);
      continue;
    }
    int64_t Bytes = Len->getAPInt().getSExtValue();
    const SCEV *Base = SE->getPointerBase(R.Start);
    bool Placed = false;
    size_t Tried = 0;
    for (auto G = Groups.rbegin(); G != Groups.rend() && Tried < Classes; ++G) {
      const Record &Lead = In[G->Lead];
      if (G->Base != Base || Lead.At != R.At || Lead.Stride != R.Stride ||
          Lead.Count != R.Count)
        continue;
      ++Tried;
      if (const SCEVConstant *D = constantDifference(R.Start, Lead.Start)) {
        int64_t From = D->getAPInt().getSExtValue();
        G->Pieces.push_back({From, From + Bytes, I});
        Placed = true;
        break;
      }
    }
    if (!Placed)
      Groups.push_back({Base, I, {{0, Bytes, I}}});
  }
  for (Group &G : Groups) {
    std::vector<Piece> &Pieces = G.Pieces;
    std::sort(Pieces.begin(), Pieces.end(),
              [](const Piece &A, const Piece &B) { return A.From < B.From; });
    size_t K = 0;
    while (K < Pieces.size()) {
      Record R = In[Pieces[K].Index];
      int64_t From = Pieces[K].From, To = Pieces[K].To;
      size_t Next = K + 1;
      for (; Next < Pieces.size() && Pieces[Next].From <= To; ++Next) {
        To = std::max(To, Pieces[Next].To);
        const Record &Other = In[Pieces[Next].Index];
        R.Stores.append(Other.Stores.begin(), Other.Stores.end());
      }
      if (Next > K + 1) {
        R.Start = SE->getAddExpr(In[G.Lead].Start,
                                 SE->getConstant(I64, From, true));
        R.Len = SE->getConstant(I64, To - From, true);
      }
      Out.push_back(R);
      K = Next;
    }
  }
  return Out;
}

// Stores of one block left to be marked after themselves, with nothing
// that breaks marks between them, that write adjacent or overlapping bytes
// at constant distances: the last of each run marks the run. A store is
// compared with the first store of at most `Classes` earlier groups of the
// same pointer base, so that a block of many stores costs linear time.
void Planner::mergeInBlocks(const std::vector<StoreInst *> &Stores,
                            const std::vector<unsigned> &Left,
                            std::vector<LocoDecision> &Out) {
  constexpr size_t Classes = 16;
  DenseMap<BasicBlock *, SmallVector<unsigned, 8>> ByBlock;
  for (unsigned I : Left)
    ByBlock[Stores[I]->getParent()].push_back(I);
  auto Size = [&](StoreInst *S) {
    return (int64_t)DL.getTypeStoreSize(S->getValueOperand()->getType())
        .getFixedValue();
  };
  struct Piece {
    int64_t From, To;
    unsigned Store;
    unsigned Position;
  };
  struct Group {
    const SCEV *Base;
    const SCEV *Lead;
    unsigned Segment;
    std::vector<Piece> Pieces;
  };
  for (auto &Entry : ByBlock) {
    if (Entry.second.size() < 2)
      continue;
    // Position and segment (runs between instructions that break marks)
    // of each store of the block, in block order.
    DenseMap<const Instruction *, std::pair<unsigned, unsigned>> Where;
    unsigned Position = 0, Segment = 0;
    for (Instruction &I : *Entry.first) {
      if (breaksMarks(I))
        ++Segment;
      Where[&I] = {Position++, Segment};
    }
    SmallVector<unsigned, 8> &Mine = Entry.second;
    std::sort(Mine.begin(), Mine.end(), [&](unsigned A, unsigned B) {
      return Where[Stores[A]].first < Where[Stores[B]].first;
    });
    std::vector<Group> Groups;
    for (unsigned I : Mine) {
      StoreInst *S = Stores[I];
      auto [At, Seg] = Where[S];
      const SCEV *Ptr = SE->getSCEV(S->getPointerOperand());
      const SCEV *Base = SE->getPointerBase(Ptr);
      bool Placed = false;
      size_t Tried = 0;
      for (auto G = Groups.rbegin(); G != Groups.rend() && Tried < Classes;
           ++G) {
        if (G->Segment != Seg || G->Base != Base)
          continue;
        ++Tried;
        if (const SCEVConstant *D = constantDifference(Ptr, G->Lead)) {
          int64_t From = D->getAPInt().getSExtValue();
          G->Pieces.push_back({From, From + Size(S), I, At});
          Placed = true;
          break;
        }
      }
      if (!Placed)
        Groups.push_back({Base, Ptr, Seg, {{0, Size(S), I, At}}});
    }
    for (Group &G : Groups) {
      std::vector<Piece> &Pieces = G.Pieces;
      std::sort(Pieces.begin(), Pieces.end(),
                [](const Piece &X, const Piece &Y) { return X.From < Y.From; });
      size_t K = 0;
      while (K < Pieces.size()) {
        int64_t From = Pieces[K].From, To = Pieces[K].To;
        size_t Next = K + 1;
        while (Next < Pieces.size() && Pieces[Next].From <= To) {
          To = std::max(To, Pieces[Next].To);
          ++Next;
        }
        if (Next > K + 1) {
          // The last of the run in the block marks it.
          size_t Last = K;
          for (size_t P = K; P < Next; ++P)
            if (Pieces[P].Position > Pieces[Last].Position)
              Last = P;
          for (size_t P = K; P < Next; ++P)
            if (P != Last)
              Out[Pieces[P].Store] = {LOCO_COVERED, 0, 0};
          Out[Pieces[Last].Store] = {LOCO_MERGED, From - Pieces[Last].From,
                                     To - From};
          Stats.merged_marks += 1;
          Stats.merged_stores += Next - K;
        }
        K = Next;
      }
    }
  }
}

Value *Planner::homeByte(IRBuilder<> &B, Value *Addr) {
  Value *Page = B.CreateLShr(Addr, B.getInt64(12));
  Value *At = B.CreateAdd(Page, B.getInt64(Abi.home_shadow_offset));
  LoadInst *L = B.CreateLoad(I8, B.CreateIntToPtr(At, Ptr), "loco.range.home");
  L->setAtomic(AtomicOrdering::Monotonic);
  L->setAlignment(Align(1));
  return L;
}

// Before `Before`: `span = load @__loco_mark_span` and a branch on
// `span != 0` (nothing is marked on one node). Returns the instruction
// before which code runs only if it is not 0, and the span.
std::pair<Instruction *, Value *> Planner::whenMarking(Instruction *Before,
                                                       const DebugLoc &Loc) {
  IRBuilder<> B(Before);
  B.SetCurrentDebugLocation(Loc);
  LoadInst *Span = B.CreateLoad(I64, unwrap(Abi.mark_span), "loco.span");
  Span->setAlignment(Align(8));
  Span->setMetadata(LLVMContext::MD_invariant_load, MDNode::get(Ctx, {}));
  Instruction *Marking = SplitBlockAndInsertIfThen(
      B.CreateICmpNE(Span, B.getInt64(0)), Before, false);
  Marking->getParent()->setName("loco.range.window");
  return {Marking, Span};
}

// Before `Before`, reached only when marking (`Span` is the mark span):
// `loco_mark_dirty(Start, Len)` unless the range is outside the window to
// mark in, or spans at most two granules whose home bytes both say "home
// here" (ABI.md). The runtime skips home granules of what it marks.
void Planner::emitCheckedMark(Instruction *Before, Value *Span, Value *Start,
                              Value *Len, const DebugLoc &Loc) {
  IRBuilder<> B(Before);
  B.SetCurrentDebugLocation(Loc);
  Value *Addr = B.CreatePtrToInt(Start, I64, "loco.range.addr");
  Value *Offset = B.CreateSub(Addr, B.getInt64(Abi.region_base));
  Value *Shared = B.CreateICmpULT(Offset, Span);
  Instruction *Then = SplitBlockAndInsertIfThen(Shared, Before, false);
  Then->getParent()->setName("loco.range.shared");
  B.SetInsertPoint(Then);
  B.SetCurrentDebugLocation(Loc);
  const auto *Known = dyn_cast<ConstantInt>(Len);
  if (Known && Known->getZExtValue() > Granule) {
    // More than two granules: the runtime reads their home bytes.
    B.CreateCall(MarkDirty->getFunctionType(), MarkDirty, {Start, Len});
    return;
  }
  Value *Last = B.CreateAdd(Addr, B.CreateSub(Len, B.getInt64(1)));
  Value *Home = B.CreateAnd(homeByte(B, Addr), homeByte(B, Last));
  Value *Small = B.CreateICmpULE(Len, B.getInt64(Granule));
  Value *Skip = B.CreateAnd(Small, B.CreateICmpNE(Home, B.getInt8(0)));
  Instruction *Mark = SplitBlockAndInsertIfThen(B.CreateNot(Skip), Then, false);
  Mark->getParent()->setName("loco.range.mark");
  B.SetInsertPoint(Mark);
  B.SetCurrentDebugLocation(Loc);
  B.CreateCall(MarkDirty->getFunctionType(), MarkDirty, {Start, Len});
}

// Emits the lifted records at the start of their blocks: first every
// expression (SCEVExpander needs the analyses, so the CFG must not change
// yet), then the checks and calls.
void Planner::emit(std::vector<Record> &Records,
                   const std::vector<StoreInst *> &Stores) {
  struct Emitted {
    Instruction *Before;
    Value *Start, *Len, *Stride, *Count;
    DebugLoc Loc;
  };
  std::vector<Emitted> All;
  {
    SCEVExpander X(*SE, DL, "loco.range", /*PreserveLCSSA=*/false);
    for (Record &R : Records) {
      Instruction *Before = &*R.At->getFirstInsertionPt();
      Emitted E{Before, nullptr, nullptr, nullptr, nullptr,
                Stores[R.Stores.front()]->getDebugLoc()};
      E.Start = X.expandCodeFor(R.Start, Ptr, Before);
      E.Len = X.expandCodeFor(R.Len, I64, Before);
      if (!R.Count->isOne()) {
        E.Stride = X.expandCodeFor(R.Stride, I64, Before);
        E.Count = X.expandCodeFor(R.Count, I64, Before);
      }
      All.push_back(E);
    }
  }
  for (Emitted &E : All) {
    Stats.loop_marks += 1;
    auto [Marking, Span] = whenMarking(E.Before, E.Loc);
    if (!E.Count) {
      emitCheckedMark(Marking, Span, E.Start, E.Len, E.Loc);
    } else {
      // for (k = 0; k < Count; k++) mark(Start + k * Stride, Len), only
      // when marking at all.
      Stats.strided_marks += 1;
      BasicBlock *Head = Marking->getParent();
      BasicBlock *Done = Head->splitBasicBlock(Marking, "loco.range.done");
      BasicBlock *Each = BasicBlock::Create(Ctx, "loco.range.each", &F, Done);
      Head->getTerminator()->setSuccessor(0, Each);
      IRBuilder<> B(Each);
      B.SetCurrentDebugLocation(E.Loc);
      PHINode *K = B.CreatePHI(I64, 2, "loco.range.k");
      K->addIncoming(B.getInt64(0), Head);
      Value *Block = B.CreateGEP(I8, E.Start, B.CreateMul(K, E.Stride));
      auto *Next =
          BinaryOperator::CreateAdd(K, B.getInt64(1), "loco.range.next");
      B.Insert(Next);
      Value *More = B.CreateICmpULT(Next, E.Count);
      BranchInst *Back = B.CreateCondBr(More, Each, Done);
      emitCheckedMark(Next, Span, Block, E.Len, E.Loc);
      K->addIncoming(Next, Back->getParent());
    }
  }
}

void Planner::run(const std::vector<StoreInst *> &Stores,
                  std::vector<LocoDecision> &Out) {
  dedicateExits(Stores);
  SE = std::make_unique<ScalarEvolution>(F, TLI, AC, DT, LI);

  std::vector<Record> Live, Done;
  for (unsigned I = 0; I < Stores.size(); ++I) {
    StoreInst *S = Stores[I];
    uint64_t Size =
        DL.getTypeStoreSize(S->getValueOperand()->getType()).getFixedValue();
    Live.push_back({SE->getSCEV(S->getPointerOperand()),
                    SE->getConstant(I64, Size), SE->getZero(I64),
                    SE->getOne(I64), S->getParent(), true, {I}});
  }
  // Innermost loops first: a record lifted out of a loop lands in a block
  // of an enclosing loop (or of none), handled later.
  SmallVector<Loop *, 8> Loops = LI.getLoopsInPreorder();
  for (auto It = Loops.rbegin(); It != Loops.rend(); ++It) {
    const Loop *L = *It;
    std::vector<Record> Here, Rest, Lifted;
    for (Record &R : Live)
      (LI.getLoopFor(R.At) == L ? Here : Rest).push_back(R);
    if (Here.empty())
      continue;
    LoopFacts X = facts(L);
    for (Record &R : Here) {
      Record Out;
      if (X.Ok && lift(R, L, X, Out))
        Lifted.push_back(Out);
      else
        Done.push_back(R);
    }
    Lifted = merge(std::move(Lifted));
    for (Record &R : Lifted) {
      normalize(R);
      Rest.push_back(R);
    }
    Live = std::move(Rest);
  }
  Done.insert(Done.end(), Live.begin(), Live.end());

  std::vector<Record> Emitting;
  std::vector<unsigned> Single;
  for (Record &R : Done) {
    if (R.Single) {
      Single.push_back(R.Stores.front());
      continue;
    }
    for (unsigned I : R.Stores)
      Out[I] = {LOCO_COVERED, 0, 0};
    Stats.lifted_stores += R.Stores.size();
    Emitting.push_back(R);
  }
  mergeInBlocks(Stores, Single, Out);
  emit(Emitting, Stores);
}

} // namespace

void loco_plan_marks(LLVMValueRef function, const LLVMValueRef *stores,
                     size_t count, LocoDecision *decisions,
                     LLVMValueRef mark_dirty, const LocoAbi *abi,
                     LocoPlanStats *stats) {
  std::vector<StoreInst *> Stores;
  for (size_t I = 0; I < count; ++I)
    Stores.push_back(cast<StoreInst>(unwrap(stores[I])));
  std::vector<LocoDecision> Out(count, LocoDecision{LOCO_KEEP, 0, 0});
  if (count > 0) {
    Planner P(*unwrap<Function>(function), *abi,
              unwrap<Function>(mark_dirty), *stats);
    P.run(Stores, Out);
  }
  for (size_t I = 0; I < count; ++I)
    decisions[I] = Out[I];
}

int loco_absolute_data(LLVMModuleRef module) {
  const Module &M = *unwrap(module);
  if (M.getPICLevel() != PICLevel::NotPIC ||
      M.getPIELevel() != PIELevel::Default)
    return 0;
  std::optional<CodeModel::Model> Model = M.getCodeModel();
  return Model && (*Model == CodeModel::Medium || *Model == CodeModel::Large);
}

void loco_set_dso_local(LLVMValueRef global) {
  cast<GlobalValue>(unwrap(global))->setDSOLocal(true);
}
