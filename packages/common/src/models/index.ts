// Public surface of the model zoo, custom models, losses, metrics and model files.
export * from './losses.js';
export * from './metrics.js';
export * from './trainable.js';
export * from './built-model.js';
export * from './create.js';
export * from './persist.js';
export { fileLoadHandler, fileSaveHandler } from './file-io.js';
export { type ModelModule } from './custom-module.js';
export { ZOO_LOSS, type ZooName } from './zoo.js';
export * from './transformer/index.js';
