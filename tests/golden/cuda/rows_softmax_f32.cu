{ lambda ; a:f32[7,300]. let
    b:f32[7,300] = fused_cuda[kernel=rows_3e179705] a
  in (b,) }
// kernel 0
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
// all threads of the block combine val with op; every thread gets the result
#define BLOCK_REDUCE(val, op, result) \
  red[threadIdx.x] = (val); __syncthreads(); \
  for (int s = blockDim.x / 2; s > 0; s >>= 1) { \
    if (threadIdx.x < s) red[threadIdx.x] = op(red[threadIdx.x], red[threadIdx.x + s]); \
    __syncthreads(); } \
  float result = red[0]; __syncthreads();

extern "C" __global__ void rows_3e179705(const float* __restrict__ in0, float* __restrict__ out, long long rows) {
  __shared__ float red[256];
  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
    long long i0 = row;
    float v1 = -__int_as_float(0x7f800000);
    for (long long j = threadIdx.x; j < 300; j += blockDim.x) {
      float v3 = in0[i0 * 300 + j];
      v1 = fmaxf(v1, v3);
    }
    BLOCK_REDUCE(v1, fmaxf, v2)
    float v4 = fmax(-__int_as_float(0x7f800000), v2);
    float v7 = 0.f;
    for (long long j = threadIdx.x; j < 300; j += blockDim.x) {
      float v9 = in0[i0 * 300 + j];
      float v10 = (v9 - v4);
      float v11 = exp(v10);
      v7 = ADD(v7, v11);
    }
    BLOCK_REDUCE(v7, ADD, v8)
    for (long long j = threadIdx.x; j < 300; j += blockDim.x) {
      float v0 = in0[i0 * 300 + j];
      float v5 = (v0 - v4);
      float v6 = exp(v5);
      float v12 = (v6 / v8);
      out[row * 300 + j] = v12;
    }
  }
}
