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
extern "C" __global__ void cross_entropy(const float* __restrict__ logits, const int* __restrict__ labels, float* __restrict__ loss) {
  long long row = blockIdx.x;
  __shared__ float red[256];
#define BLOCK_REDUCE(val, op, result) \
  red[threadIdx.x] = (val); __syncthreads(); \
  for (int s = 256 / 2; s > 0; s >>= 1) { \
    if (threadIdx.x < s) red[threadIdx.x] = op(red[threadIdx.x], red[threadIdx.x + s]); \
    __syncthreads(); } \
  float result = red[0]; __syncthreads();
  const long long n = 50257;
  float m = -__int_as_float(0x7f800000);
  for (long long j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, logits[row * n + j]);
  BLOCK_REDUCE(m, fmaxf, row_max)
  float s = 0.f;
  for (long long j = threadIdx.x; j < n; j += blockDim.x) s += __expf(logits[row * n + j] - row_max);
  BLOCK_REDUCE(s, ADD, row_sum)
  if (threadIdx.x == 0) {
    long long j = labels[row];
    loss[row] = row_max + __logf(row_sum) - logits[row * n + j];
  }
}
