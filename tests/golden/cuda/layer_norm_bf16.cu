#include <cuda_fp16.h>
__device__ __forceinline__ float bf16_to_f32(unsigned short v) {
  return __uint_as_float(((unsigned int)v) << 16);
}
__device__ __forceinline__ unsigned short f32_to_bf16(float f) {  // round to nearest even
  unsigned int u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);  // NaN
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

#define ADD(a, b) ((a) + (b))
extern "C" __global__ void layer_norm(const unsigned short* __restrict__ x, const unsigned short* __restrict__ gamma, const unsigned short* __restrict__ beta, unsigned short* __restrict__ out) {
  long long row = blockIdx.x;
  __shared__ float red[256];
#define BLOCK_REDUCE(val, op, result) \
  red[threadIdx.x] = (val); __syncthreads(); \
  for (int s = 256 / 2; s > 0; s >>= 1) { \
    if (threadIdx.x < s) red[threadIdx.x] = op(red[threadIdx.x], red[threadIdx.x + s]); \
    __syncthreads(); } \
  float result = red[0]; __syncthreads();
  const long long n = 768;
  float s = 0.f;
  for (long long j = threadIdx.x; j < n; j += blockDim.x) s += bf16_to_f32(x[row * n + j]);
  BLOCK_REDUCE(s, ADD, total)
  float mean = total / n;
  float q = 0.f;
  for (long long j = threadIdx.x; j < n; j += blockDim.x) { float d = bf16_to_f32(x[row * n + j]) - mean; q += d * d; }
  BLOCK_REDUCE(q, ADD, sq)
  float inv = rsqrtf(sq / n + 1e-05f);
  for (long long j = threadIdx.x; j < n; j += blockDim.x)
    out[row * n + j] = f32_to_bf16((bf16_to_f32(x[row * n + j]) - mean) * inv * (bf16_to_f32(gamma[j])) + bf16_to_f32(beta[j]));
}
