// Entry of the bundle's training benchmark (bench/scaling.mjs): `--backend webgpu --without-torch`
// on a GPU machine that has Node alone.
import './provide.mjs';
import '../../bench/scaling.mjs';
