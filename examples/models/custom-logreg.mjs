// Logistic regression written by hand: explicit variables, a predict function and a per-sample
// loss, to show the custom-model contract of tfjs-ddp (examples/jobs/custom-loop.yaml uses it).
//
//   export function createModel(tf, params) -> tf.LayersModel | { variables: tf.Variable[], predict(x) }
//   export function loss(tf, yTrue, yPred)   -> one loss per sample, shape [batch]
//
// `tf` is passed in rather than imported so the module runs on whichever backend the worker chose.

/** params.features: inputs per sample (2 for the synthetic-binary data set). */
export function createModel(tf, params = {}) {
  const features = params.features ?? 2;
  // Zeros are a fine start for a convex problem, and rank 0's values are broadcast anyway.
  const w = tf.variable(tf.zeros([features, 1]), true, 'logreg_w');
  const b = tf.variable(tf.zeros([1]), true, 'logreg_b');
  return {
    variables: [w, b],
    predict: (x) => tf.sigmoid(tf.add(tf.matMul(x, w), b)),
  };
}

/** Binary cross-entropy per sample; probabilities are clipped so log never sees 0. */
export function loss(tf, yTrue, yPred) {
  const epsilon = 1e-7;
  const y = tf.reshape(yTrue, [-1]);
  const p = tf.clipByValue(tf.reshape(yPred, [-1]), epsilon, 1 - epsilon);
  return tf.neg(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p)))));
}
