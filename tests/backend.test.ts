import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { selectBackend, silentLogger, type Logger } from '@tfjs-ddp/common';

function recordingLogger(lines: string[]): Logger {
  const log = (msg: string) => lines.push(msg);
  return { debug: log, info: log, warn: log, error: log, child: () => recordingLogger(lines) };
}

describe('selectBackend', () => {
  it('auto on a machine without native TensorFlow or a GPU adapter picks wasm and says why it skipped the others', async () => {
    const lines: string[] = [];
    const chosen = await selectBackend('auto', recordingLogger(lines));
    expect(chosen.name).toBe('wasm');
    expect(chosen.tf).toBe(tf);
    expect(tf.getBackend()).toBe('wasm');
    expect(chosen.reason).toMatch(/WebAssembly.*one thread/);
    expect(chosen.skipped.map((s) => s.name)).toEqual(['tfjs-node-gpu', 'webgpu', 'tfjs-node']);
    expect(chosen.skipped[0].why).toBe('@tensorflow/tfjs-node-gpu is not installed (optional dependency)');
    expect(chosen.skipped[1].why).toMatch(/no WebGPU adapter|webgpu is not installed/);
    expect(chosen.skipped[2].why).toBe('@tensorflow/tfjs-node is not installed (optional dependency)');
    expect(lines).toContain(
      'skipped backend tfjs-node-gpu: @tensorflow/tfjs-node-gpu is not installed (optional dependency)',
    );
    expect(lines.at(-1)).toMatch(/^compute backend: wasm via wasm \(WebAssembly/);
    // A skipped WebGPU attempt leaves no browser globals behind for other code to trip over.
    expect((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu).toBeUndefined();
  });

  it('rejects an unknown backend name, listing the allowed ones', async () => {
    await expect(selectBackend('cuda', silentLogger)).rejects.toThrow(
      "unknown backend 'cuda': expected one of auto, tensorflow, webgpu, wasm, cpu",
    );
  });

  it('fails an explicit request that cannot load, saying what failed and what to do', async () => {
    const err = await selectBackend('tensorflow', silentLogger).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^backend 'tensorflow' could not be loaded: /);
    expect((err as Error).message).toContain('tfjs-node-gpu: @tensorflow/tfjs-node-gpu is not installed');
    expect((err as Error).message).toContain('npm install @tensorflow/tfjs-node@4.22.0');
    expect((err as Error).message).toContain('choose another backend (auto, webgpu, wasm, cpu)');
  });

  it('tells a broken install apart from a missing one and moves on', async () => {
    const importer = async (specifier: string) => {
      if (specifier === '@tensorflow/tfjs-node-gpu') {
        throw new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory');
      }
      if (specifier === 'webgpu') {
        // Dawn whose native addon starts and then fails: not an import error, still a skip.
        return {
          globals: {},
          create: () => {
            throw new Error('dawn.node: failed to create instance');
          },
        };
      }
      if (specifier === '@tensorflow/tfjs-node') {
        throw Object.assign(new Error(`Cannot find package '@tensorflow/tfjs-node' imported from /x.js`), {
          code: 'ERR_MODULE_NOT_FOUND',
        });
      }
      return import(specifier);
    };
    const chosen = await selectBackend('auto', silentLogger, { importer });
    expect(chosen.name).toBe('wasm');
    expect(chosen.skipped[0]).toEqual({
      name: 'tfjs-node-gpu',
      why: '@tensorflow/tfjs-node-gpu failed to load: libcudart.so.11.0: cannot open shared object file: No such file or directory',
    });
    expect(chosen.skipped[1]).toEqual({
      name: 'webgpu',
      why: 'webgpu failed while starting: dawn.node: failed to create instance',
    });
    expect(chosen.skipped[2]).toEqual({
      name: 'tfjs-node',
      why: '@tensorflow/tfjs-node is not installed (optional dependency)',
    });
  });

  it('loads an explicitly requested backend and can switch between them', async () => {
    expect((await selectBackend('cpu', silentLogger)).name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    const wasm = await selectBackend('wasm', silentLogger);
    expect(wasm).toMatchObject({ name: 'wasm', via: 'wasm', skipped: [] });
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.tidy(() => tf.add(tf.tensor1d([1, 2]), 1).arraySync())).toEqual([2, 3]);
  });

  it('fails an explicit webgpu request without an adapter and says to install a Vulkan driver', async () => {
    await expect(selectBackend('webgpu', silentLogger)).rejects.toThrow(
      /backend 'webgpu' could not be loaded: .*Vulkan/,
    );
  });
});
