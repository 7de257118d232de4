pub struct SharedHeap;
pub struct HeapStats;
