// Gradient-sized memory a collective reuses from one operation to the next: the owner's staging
// area for peers' contributions and the f16/bf16 encode scratch. Both only grow, so a training loop
// that reduces the same buffer every step allocates once.

export class Workspace {
  /** Times gradient-sized memory (staging or scratch) was allocated. */
  allocations = 0;
  private stagingArea = new Float32Array(0);
  private wireScratch = new Uint16Array(0);

  /** At least `elements` floats of staging; contents are unspecified. */
  staging(elements: number): Float32Array {
    if (this.stagingArea.length < elements) {
      this.stagingArea = new Float32Array(elements);
      this.allocations++;
    }
    return this.stagingArea;
  }

  /** At least `elements` halves of wire scratch; contents are unspecified. */
  wire(elements: number): Uint16Array {
    if (this.wireScratch.length < elements) {
      this.wireScratch = new Uint16Array(elements);
      this.allocations++;
    }
    return this.wireScratch;
  }
}
