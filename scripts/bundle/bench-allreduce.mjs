// Entry of the bundle's all-reduce benchmark (bench/allreduce.mjs); its rank and raw-bandwidth
// processes are the entries rank.mjs and raw-peer.mjs beside it.
import './provide.mjs';
import '../../bench/allreduce.mjs';
