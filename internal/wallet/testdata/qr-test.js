// Test-only page script: draws a string with the wallet's QR encoder so the
// Go test can screenshot the canvas and decode it.
import { encode, draw, byteCapacity } from '/wallet/static/qr.js';

window.qrTest = {
  // Draws text at scale device pixels per module (one canvas pixel per
  // device pixel) and returns what the encoder chose.
  draw(text, scale, options) {
    const qr = encode(text, options || {});
    const canvas = document.getElementById('c');
    draw(canvas, qr, { scale });
    canvas.style.width = `${canvas.width / (window.devicePixelRatio || 1)}px`;
    return { version: qr.version, ecl: qr.ecl, mask: qr.mask, size: qr.size };
  },
  // The module matrix as a string of 0 and 1, row by row.
  modules(text, options) {
    const qr = encode(text, options || {});
    return { size: qr.size, modules: Array.from(qr.modules).join('') };
  },
  capacity(version, ecl) {
    return byteCapacity(version, ecl);
  },
  // The error message of encode, or '' when it succeeds.
  encodeError(text, options) {
    try {
      encode(text, options || {});
      return '';
    } catch (e) {
      return `${e.name}: ${e.message}`;
    }
  },
};
window.qrTestReady = true;
