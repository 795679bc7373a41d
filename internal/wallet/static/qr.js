// QR Code encoder (ISO/IEC 18004) for the Lintel wallet.
//
// Byte mode only (text is encoded as UTF-8; an ECI 26 header announces UTF-8
// when the text is not plain ASCII), versions 1–40 chosen by length, error
// correction level M by default (L when the text is too long for M), all
// eight masks scored with the standard penalty rules.
//
//   import { encode, draw } from './qr.js';
//   const qr = encode('hello');     // {version, ecl, size, mask, get(x, y)}
//   draw(canvas, qr, {scale: 6});   // 4-module white quiet zone by default

// Error-correction codewords per block, by level (L, M, Q, H) and version.
const EC_PER_BLOCK = {
  L: [7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28,
    28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
  M: [10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
    26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28],
  Q: [13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30,
    28, 30, 30, 30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
  H: [17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28,
    30, 24, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
};

// Number of error-correction blocks, by level and version.
const BLOCKS = {
  L: [1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8,
    8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25],
  M: [1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16,
    17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49],
  Q: [1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20,
    23, 23, 25, 27, 29, 34, 34, 35, 38, 40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68],
  H: [1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25,
    25, 34, 30, 32, 35, 37, 40, 42, 45, 48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81],
};

// The two format-information bits of each level.
const ECL_BITS = { L: 1, M: 0, Q: 3, H: 2 };

// ---------------------------------------------------------------------------
// Arithmetic in GF(256) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1.

const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255];
}

function gfMul(a, b) {
  return a === 0 || b === 0 ? 0 : EXP[LOG[a] + LOG[b]];
}

const generators = new Map();

// The Reed–Solomon generator polynomial (x - α^0)(x - α^1)…(x - α^(n-1)),
// highest power first; the leading 1 is included.
function generator(n) {
  let g = generators.get(n);
  if (g) return g;
  g = [1];
  for (let i = 0; i < n; i++) {
    const next = new Array(g.length + 1).fill(0);
    for (let j = 0; j < g.length; j++) {
      next[j] ^= g[j];
      next[j + 1] ^= gfMul(g[j], EXP[i]);
    }
    g = next;
  }
  generators.set(n, g);
  return g;
}

// The n error-correction codewords of data: the remainder of
// data(x)·x^n divided by the generator.
function reedSolomon(data, n) {
  const g = generator(n);
  const rem = new Uint8Array(n);
  for (const d of data) {
    const factor = d ^ rem[0];
    rem.copyWithin(0, 1);
    rem[n - 1] = 0;
    if (factor !== 0) {
      for (let j = 0; j < n; j++) rem[j] ^= gfMul(g[j + 1], factor);
    }
  }
  return rem;
}

// ---------------------------------------------------------------------------
// Sizes and capacities.

// Modules left for codewords once the function patterns are drawn.
function rawDataModules(version) {
  let n = (16 * version + 128) * version + 64;
  if (version >= 2) {
    const align = Math.floor(version / 7) + 2;
    n -= (25 * align - 10) * align - 55;
    if (version >= 7) n -= 36;
  }
  return n;
}

function totalCodewords(version) {
  return rawDataModules(version) >> 3;
}

function dataCodewords(version, ecl) {
  return totalCodewords(version) - EC_PER_BLOCK[ecl][version - 1] * BLOCKS[ecl][version - 1];
}

// Centre coordinates of the alignment patterns on each axis.
function alignmentPositions(version) {
  if (version === 1) return [];
  const size = version * 4 + 17;
  const count = Math.floor(version / 7) + 2;
  const step = version === 32 ? 26 : Math.ceil((size - 13) / (count * 2 - 2)) * 2;
  const pos = [6];
  for (let p = size - 7; pos.length < count; p -= step) pos.splice(1, 0, p);
  return pos;
}

function countBits(version) {
  return version < 10 ? 8 : 16;
}

// The largest number of UTF-8 bytes a symbol of this version and level
// holds (in one byte segment; a non-ASCII text also needs the 12-bit ECI).
export function byteCapacity(version, ecl = 'M') {
  return Math.floor((dataCodewords(version, ecl) * 8 - 4 - countBits(version)) / 8);
}

// ---------------------------------------------------------------------------
// Encoding.

class BitBuffer {
  constructor() {
    this.bits = [];
  }

  put(value, length) {
    for (let i = length - 1; i >= 0; i--) this.bits.push((value >>> i) & 1);
  }
}

// encode returns the QR symbol for text. Options: ecl ('L', 'M', 'Q' or 'H';
// without it M, or L when M cannot hold the text), minVersion, mask (0–7,
// to skip the automatic choice). It throws a RangeError when the text does
// not fit in version 40.
export function encode(text, options = {}) {
  const bytes = new TextEncoder().encode(String(text));
  const ascii = bytes.every((b) => b < 0x80);
  const levels = options.ecl ? [options.ecl] : ['M', 'L'];
  for (const ecl of levels) {
    if (!(ecl in ECL_BITS)) throw new RangeError(`qr: unknown error correction level ${ecl}`);
    for (let version = options.minVersion || 1; version <= 40; version++) {
      const needed = (ascii ? 0 : 12) + 4 + countBits(version) + bytes.length * 8;
      if (needed <= dataCodewords(version, ecl) * 8) {
        return build(bytes, ascii, version, ecl, options.mask);
      }
    }
  }
  throw new RangeError(`qr: ${bytes.length} bytes do not fit in a QR code`);
}

function build(bytes, ascii, version, ecl, fixedMask) {
  const capacity = dataCodewords(version, ecl);
  const bb = new BitBuffer();
  if (!ascii) {
    bb.put(0b0111, 4); // ECI
    bb.put(26, 8); // UTF-8
  }
  bb.put(0b0100, 4); // byte mode
  bb.put(bytes.length, countBits(version));
  for (const b of bytes) bb.put(b, 8);
  bb.put(0, Math.min(4, capacity * 8 - bb.bits.length)); // terminator
  bb.put(0, (8 - (bb.bits.length % 8)) % 8);
  const data = new Uint8Array(capacity);
  let n = 0;
  for (; n * 8 < bb.bits.length; n++) {
    let v = 0;
    for (let i = 0; i < 8; i++) v = (v << 1) | bb.bits[n * 8 + i];
    data[n] = v;
  }
  for (let pad = 0xec; n < capacity; n++, pad ^= 0xec ^ 0x11) data[n] = pad;

  const codewords = interleave(data, version, ecl);
  const m = new Matrix(version);
  m.drawFunctionPatterns();
  m.placeCodewords(codewords);

  let mask = fixedMask;
  if (mask === undefined) {
    let best = Infinity;
    for (let candidate = 0; candidate < 8; candidate++) {
      m.applyMask(candidate);
      m.drawFormat(ecl, candidate);
      const score = m.penalty();
      if (score < best) {
        best = score;
        mask = candidate;
      }
      m.applyMask(candidate); // XOR again: undone
    }
  }
  m.applyMask(mask);
  m.drawFormat(ecl, mask);

  const size = m.size;
  const modules = m.modules;
  return {
    version,
    ecl,
    mask,
    size,
    modules,
    get(x, y) {
      return modules[y * size + x] === 1;
    },
  };
}

// Splits the data codewords into blocks, appends each block's error
// correction and interleaves them: first the data codewords column by
// column, then the error-correction codewords.
function interleave(data, version, ecl) {
  const ecLen = EC_PER_BLOCK[ecl][version - 1];
  const numBlocks = BLOCKS[ecl][version - 1];
  const total = totalCodewords(version);
  const shortTotal = Math.floor(total / numBlocks);
  const numShort = numBlocks - (total % numBlocks);
  const blocks = [];
  let offset = 0;
  for (let b = 0; b < numBlocks; b++) {
    const len = shortTotal - ecLen + (b < numShort ? 0 : 1);
    const d = data.subarray(offset, offset + len);
    offset += len;
    blocks.push({ data: d, ec: reedSolomon(d, ecLen) });
  }
  const out = [];
  const maxData = shortTotal - ecLen + 1;
  for (let i = 0; i < maxData; i++) {
    for (const blk of blocks) if (i < blk.data.length) out.push(blk.data[i]);
  }
  for (let i = 0; i < ecLen; i++) {
    for (const blk of blocks) out.push(blk.ec[i]);
  }
  return out;
}

// ---------------------------------------------------------------------------
// The module matrix.

class Matrix {
  constructor(version) {
    this.version = version;
    this.size = version * 4 + 17;
    this.modules = new Uint8Array(this.size * this.size); // 1 = dark
    this.fixed = new Uint8Array(this.size * this.size); // 1 = function pattern
  }

  set(x, y, dark) {
    const i = y * this.size + x;
    this.modules[i] = dark ? 1 : 0;
    this.fixed[i] = 1;
  }

  drawFunctionPatterns() {
    const size = this.size;
    for (let i = 0; i < size; i++) {
      this.set(6, i, i % 2 === 0); // timing patterns
      this.set(i, 6, i % 2 === 0);
    }
    this.drawFinder(3, 3);
    this.drawFinder(size - 4, 3);
    this.drawFinder(3, size - 4);

    const pos = alignmentPositions(this.version);
    const last = pos.length - 1;
    for (let i = 0; i < pos.length; i++) {
      for (let j = 0; j < pos.length; j++) {
        if ((i === 0 && j === 0) || (i === 0 && j === last) || (i === last && j === 0)) continue;
        for (let dy = -2; dy <= 2; dy++) {
          for (let dx = -2; dx <= 2; dx++) {
            this.set(pos[i] + dx, pos[j] + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
          }
        }
      }
    }

    this.drawFormat('M', 0); // reserves the area; drawn again after masking
    if (this.version >= 7) this.drawVersion();
  }

  // A finder pattern centred on (cx, cy) with its light separator.
  drawFinder(cx, cy) {
    for (let dy = -4; dy <= 4; dy++) {
      for (let dx = -4; dx <= 4; dx++) {
        const x = cx + dx;
        const y = cy + dy;
        if (x < 0 || y < 0 || x >= this.size || y >= this.size) continue;
        const d = Math.max(Math.abs(dx), Math.abs(dy));
        this.set(x, y, d !== 2 && d !== 4);
      }
    }
  }

  // The 15 format bits (level and mask, BCH(15,5) protected, XOR 0x5412),
  // twice, and the dark module.
  drawFormat(ecl, mask) {
    const data = (ECL_BITS[ecl] << 3) | mask;
    let rem = data;
    for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
    const bits = ((data << 10) | rem) ^ 0x5412;
    const bit = (i) => ((bits >>> i) & 1) === 1;
    const size = this.size;

    for (let i = 0; i <= 5; i++) this.set(8, i, bit(i));
    this.set(8, 7, bit(6));
    this.set(8, 8, bit(7));
    this.set(7, 8, bit(8));
    for (let i = 9; i < 15; i++) this.set(14 - i, 8, bit(i));

    for (let i = 0; i < 8; i++) this.set(size - 1 - i, 8, bit(i));
    for (let i = 8; i < 15; i++) this.set(8, size - 15 + i, bit(i));
    this.set(8, size - 8, true);
  }

  // The 18 version bits (6 bits of version, BCH(18,6) protected), in the
  // 6×3 blocks beside the top-right and bottom-left finders.
  drawVersion() {
    let rem = this.version;
    for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
    const bits = (this.version << 12) | rem;
    for (let i = 0; i < 18; i++) {
      const dark = ((bits >>> i) & 1) === 1;
      const a = this.size - 11 + (i % 3);
      const b = Math.floor(i / 3);
      this.set(a, b, dark);
      this.set(b, a, dark);
    }
  }

  // Places the codewords' bits, most significant first, in two-module-wide
  // columns from the bottom-right corner, up and down in turn, skipping the
  // vertical timing pattern and the function patterns. Modules left over
  // stay light.
  placeCodewords(codewords) {
    const size = this.size;
    const totalBits = codewords.length * 8;
    let i = 0;
    let upward = true;
    for (let right = size - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5;
      for (let step = 0; step < size; step++) {
        const y = upward ? size - 1 - step : step;
        for (let k = 0; k < 2; k++) {
          const x = right - k;
          const idx = y * size + x;
          if (this.fixed[idx]) continue;
          if (i < totalBits) {
            this.modules[idx] = (codewords[i >>> 3] >>> (7 - (i & 7))) & 1;
            i++;
          }
        }
      }
      upward = !upward;
    }
  }

  // XORs the mask pattern over every non-function module (applying it twice
  // undoes it).
  applyMask(mask) {
    const size = this.size;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const idx = y * size + x;
        if (this.fixed[idx]) continue;
        let flip;
        switch (mask) {
          case 0: flip = (x + y) % 2 === 0; break;
          case 1: flip = y % 2 === 0; break;
          case 2: flip = x % 3 === 0; break;
          case 3: flip = (x + y) % 3 === 0; break;
          case 4: flip = (Math.floor(y / 2) + Math.floor(x / 3)) % 2 === 0; break;
          case 5: flip = ((x * y) % 2) + ((x * y) % 3) === 0; break;
          case 6: flip = (((x * y) % 2) + ((x * y) % 3)) % 2 === 0; break;
          case 7: flip = (((x + y) % 2) + ((x * y) % 3)) % 2 === 0; break;
          default: throw new RangeError(`qr: bad mask ${mask}`);
        }
        if (flip) this.modules[idx] ^= 1;
      }
    }
  }

  // The penalty score of the symbol as it is now (lower is better).
  penalty() {
    const size = this.size;
    const m = this.modules;
    let score = 0;
    const line = new Uint8Array(size);
    for (let dir = 0; dir < 2; dir++) {
      for (let a = 0; a < size; a++) {
        for (let b = 0; b < size; b++) line[b] = dir === 0 ? m[a * size + b] : m[b * size + a];
        score += linePenalty(line);
      }
    }
    // Rule 2: 2×2 blocks of one colour.
    for (let y = 0; y < size - 1; y++) {
      for (let x = 0; x < size - 1; x++) {
        const c = m[y * size + x];
        if (c === m[y * size + x + 1] && c === m[(y + 1) * size + x] && c === m[(y + 1) * size + x + 1]) {
          score += 3;
        }
      }
    }
    // Rule 4: the share of dark modules away from 50 %, in 5 % steps.
    let dark = 0;
    for (const c of m) dark += c;
    const total = size * size;
    score += 10 * Math.floor(Math.abs(dark * 20 - total * 10) / total);
    return score;
  }
}

const FINDER_LIKE = [1, 0, 1, 1, 1, 0, 1];

// Rules 1 and 3 for one row or column: runs of five or more modules of one
// colour, and 1:1:3:1:1 finder-like patterns with four light modules on a
// side (outside the symbol counts as light).
function linePenalty(line) {
  const n = line.length;
  let score = 0;
  let run = 0;
  for (let i = 0; i < n; i++) {
    if (i > 0 && line[i] === line[i - 1]) {
      run++;
      if (run === 5) score += 3;
      else if (run > 5) score += 1;
    } else {
      run = 1;
    }
  }
  for (let i = 0; i + 7 <= n; i++) {
    let match = true;
    for (let k = 0; k < 7 && match; k++) match = line[i + k] === FINDER_LIKE[k];
    if (!match) continue;
    if (lightRun(line, i - 4, i) || lightRun(line, i + 7, i + 11)) score += 40;
  }
  return score;
}

function lightRun(line, from, to) {
  for (let i = Math.max(from, 0); i < Math.min(to, line.length); i++) {
    if (line[i] !== 0) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Drawing.

// draw paints qr on canvas at scale pixels per module with a light quiet
// zone of quiet modules (4 by default) and sets the canvas's pixel size.
export function draw(canvas, qr, options = {}) {
  const scale = Math.max(1, Math.floor(options.scale || 6));
  const quiet = options.quiet === undefined ? 4 : options.quiet;
  const n = qr.size + 2 * quiet;
  canvas.width = n * scale;
  canvas.height = n * scale;
  const g = canvas.getContext('2d');
  g.fillStyle = options.light || '#fff';
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.fillStyle = options.dark || '#000';
  for (let y = 0; y < qr.size; y++) {
    let x = 0;
    while (x < qr.size) {
      if (!qr.get(x, y)) {
        x++;
        continue;
      }
      const start = x;
      while (x < qr.size && qr.get(x, y)) x++;
      g.fillRect((start + quiet) * scale, (y + quiet) * scale, (x - start) * scale, scale);
    }
  }
}
