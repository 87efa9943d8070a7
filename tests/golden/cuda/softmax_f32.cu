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
extern "C" __global__ void softmax(const float* __restrict__ x, float* __restrict__ out) {
  long long row = blockIdx.x;
  __shared__ float red[256];
#define BLOCK_REDUCE(val, op, result) \
  red[threadIdx.x] = (val); __syncthreads(); \
  for (int s = 256 / 2; s > 0; s >>= 1) { \
    if (threadIdx.x < s) red[threadIdx.x] = op(red[threadIdx.x], red[threadIdx.x + s]); \
    __syncthreads(); } \
  float result = red[0]; __syncthreads();
  const long long n = 1024;
  float m = -__int_as_float(0x7f800000);
  for (long long j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, x[row * n + j]);
  BLOCK_REDUCE(m, fmaxf, row_max)
  float s = 0.f;
  for (long long j = threadIdx.x; j < n; j += blockDim.x) s += __expf(x[row * n + j] - row_max);
  BLOCK_REDUCE(s, ADD, row_sum)
  float inv = 1.f / row_sum;
  for (long long j = threadIdx.x; j < n; j += blockDim.x)
    out[row * n + j] = __expf(x[row * n + j] - row_max) * inv;
}
